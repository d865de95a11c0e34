"""A comparison's headline: one method against the most accurate of several over the same seeds, the
difference of the means, the adversaries among its elected; and the `[headline]` table checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from seccl.experiments.comparison import Outcome, headline
from seccl.experiments.plan import Headline, experiment_path, load_experiment
from seccl.runs.config import ConfigError


def run(
    method: str,
    seed: int,
    accuracy: float,
    *,
    backdoor: float | None = None,
    used: int = 0,
    attack: str = "backdoor",
    split: str = "iid",
) -> Outcome:
    return Outcome(
        run=f"{attack}-{method}-seed{seed}",
        group="g",
        method=method,
        attack=attack,
        attack_fraction=None if attack == "none" else 0.3,
        seed=seed,
        split=split,
        final_accuracy=accuracy,
        final_macro_f1=accuracy,
        best_accuracy=accuracy,
        attack_success_rate=backdoor,
        adversaries_used=used,
        slots=40,
        honest_kept_out=None,
        diverged_round=None,
        seconds=1.0,
        rounds=(),
    )


def test_the_best_rival_is_the_most_accurate_over_the_same_seeds_and_the_difference_is_of_means() -> None:
    outcomes = [
        run("gate", 0, 0.95, backdoor=0.01, used=3),
        run("gate", 1, 0.93, backdoor=0.03, used=1),
        run("krum", 0, 0.92, backdoor=0.2),
        run("krum", 1, 0.90, backdoor=0.4),
        run("median", 0, 0.99, backdoor=0.0),  # the most accurate, but over seed 0 alone
        run("borda", 0, 0.50, backdoor=0.9),
        run("borda", 1, 0.70, backdoor=0.7),
        run("krum", 0, 0.97, attack="none"),  # a row the headline's method has no run in
    ]
    lines = headline(outcomes, Headline("gate", ("krum", "median"), ("borda",)))

    rows = [line for line in lines if line.startswith("| backdoor")]
    assert rows == [
        "| backdoor, e = 0.3 | 0.940 ± 0.014 (2) (0.020) | 4 of 80 "
        "| 0.910 ± 0.014 (2) (0.300) krum | +0.030 | 0.600 ± 0.141 (2) (0.800) |"
    ]
    assert not any(line.startswith("| none") for line in lines)
    assert "| attack | gate | adversaries among its elected | best of krum / median | Δ | borda |" in lines


def test_a_row_without_a_rival_over_the_same_seeds_says_so_and_each_split_has_its_table() -> None:
    outcomes = [
        run("gate", 0, 0.9, split="iid"),
        run("gate", 0, 0.8, split="dirichlet"),
        run("krum", 0, 0.85, split="dirichlet"),
    ]
    lines = headline(outcomes, Headline("gate", ("krum",)))

    assert [line for line in lines if line.startswith("### ")] == ["### Split iid", "### Split dirichlet"]
    rows = [line for line in lines if line.startswith("| backdoor")]
    assert rows == [
        "| backdoor, e = 0.3 | 0.900¹ | 0 of 40 | — | — |",
        "| backdoor, e = 0.3 | 0.800¹ | 0 of 40 | 0.850¹ krum | -0.050 |",
    ]


def test_the_built_in_election_comparison_heads_with_gram_gate_against_the_four_robust_rules() -> None:
    assert load_experiment(experiment_path("election")).headline == Headline(
        "seccl-gate", ("multikrum", "median", "trimmed-mean", "fltrust"), ("seccl",)
    )


SPEC = """
report = "{report}"
[settings]
participants = 4
rounds = 1
chain = "embedded"
[[groups]]
name = "g"
vary = {{ method = ["seccl-gate", "median"] }}
[headline]
{headline}
"""


@pytest.mark.parametrize(
    ("report", "headline_lines", "says"),
    [
        ("methods", 'method = "seccl-gate"\nbest_of = ["multikrum"]', "it runs none named multikrum"),
        ("methods", 'method = "seccl-gate"', "it needs a method and best_of"),
        ("methods", 'method = "median"\nbest_of = ["median"]', "distinct methods"),
        ("methods", 'method = "seccl-gate"\nbest_of = "median"', "are lists of methods"),
        ("methods", 'method = "seccl-gate"\nbest_of = ["median"]\nagainst = ["x"]', "it needs a method"),
        ("methods", 'best_of = ["median"]', "headline needs method = NAME"),
        ("rounds", 'method = "seccl-gate"\nbest_of = ["median"]', 'needs report = "methods"'),
    ],
)
def test_a_headline_that_names_what_the_experiment_does_not_run_is_refused(
    tmp_path: Path, report: str, headline_lines: str, says: str
) -> None:
    spec = tmp_path / "x.toml"
    spec.write_text(SPEC.format(report=report, headline=headline_lines))

    with pytest.raises(ConfigError, match=says.replace("(", r"\(")) as refused:
        load_experiment(spec)
    assert "\n" not in str(refused.value)


def test_a_headline_of_methods_the_experiment_runs_is_kept(tmp_path: Path) -> None:
    spec = tmp_path / "x.toml"
    spec.write_text(SPEC.format(report="methods", headline='method = "seccl-gate"\nbest_of = ["median"]'))

    assert load_experiment(spec).headline == Headline("seccl-gate", ("median",), ())
