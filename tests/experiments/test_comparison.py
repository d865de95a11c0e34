"""`seccl experiment compare` on a tiny grid: SecCL sessions and chain-free baselines under the
same attack, one row per run, finished runs skipped, a run cut short run again to the same result."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from seccl.cli.main import main
from seccl.experiments.plan import experiment_path, load_experiment

TINY = """
title = "a tiny comparison"
report = "methods"
order_by = ["seed"]
[settings]
participants = 4
rounds = 1
local_epochs = 1
per_participant = 60
chain = "embedded"
workers = 0
attack_fraction = 0.25
[[groups]]
name = "g"
vary = { attack = ["alie+collude-votes"], method = ["seccl", "median"], seed = [0, 1] }
[[groups]]
name = "b"
cases = [{ label = "dssgd", attack = "adaptive-backdoor", method = "dssgd" }]
"""


def test_a_comparison_runs_seed_0_first_skips_what_is_done_and_reruns_what_was_cut_short(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    out = tmp_path / "out"

    assert main(["experiment", str(spec), "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    order = [line.split("] ")[1].split(":")[0] for line in printed.splitlines() if "starting" in line]
    assert order == [
        "g-alie+collude-votes-seccl-seed0",
        "g-alie+collude-votes-median-seed0",
        "b-dssgd",
        "g-alie+collude-votes-seccl-seed1",
        "g-alie+collude-votes-median-seed1",
    ]
    rows = {r["run"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert set(rows) == set(order)
    assert {rows[r]["method"] for r in order} == {"seccl", "median", "dssgd"}
    assert all(0 <= float(r["final_accuracy"]) <= 1 for r in rows.values())
    assert (
        rows["b-dssgd"]["attack_success_rate"] != ""
        and rows["g-alie+collude-votes-median-seed0"]["attack_success_rate"] == ""
    )
    # The real session under ALIE elected from a slate where the one colluder was known to everyone.
    session = json.loads((out / "runs" / order[0] / "metrics.json").read_text())
    assert session["adversaries"] and len(session["rounds"][0]["elected"]) == 1
    report = (out / "results.md").read_text()
    assert "5 of 5 runs finished" in report and "| alie |" in report and " ± " in report
    summary = report.split("## Summary", 1)[1].split("\n## ", 1)[0]  # every group's runs at once
    assert "### Split iid: final test accuracy" in summary
    assert any(line.startswith("| alie, e = 0.25 | ") and "(2)" in line for line in summary.splitlines())
    assert (out / "g" / "comparison.png").read_bytes()[:4] == b"\x89PNG"

    # A chain-free run leaves its one file only when it finishes, and only then is it recorded:
    # without both, it runs again.
    cut = out / "runs" / "g-alie+collude-votes-median-seed1" / "metrics.json"
    before = json.loads(cut.read_text())
    cut.unlink()
    (out / "records" / cut.parent.name / "metrics.json").unlink()
    kept = (out / "runs" / order[0] / "metrics.json").stat().st_mtime_ns

    assert main(["experiment", str(spec), "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert (
        printed.count("finished earlier, skipped") == 4
        and "[5/5] g-alie+collude-votes-median-seed1: starting" in printed
    )
    assert (out / "runs" / order[0] / "metrics.json").stat().st_mtime_ns == kept
    again = json.loads(cut.read_text())
    assert again["final_accuracy"] == before["final_accuracy"] and again["rounds"][0]["kept"] == [0, 1, 2, 3]


def test_the_built_in_comparison_plans_every_method_attack_and_e_seed_0_first() -> None:
    compare = load_experiment(experiment_path("compare"))

    planned = [r for r in compare.runs if not r.is_baseline]
    seeds = [r.settings["seed"] for r in planned]
    assert seeds == sorted(seeds) and seeds.count(0) == seeds.count(1) == seeds.count(2) == 154
    iid = [r for r in planned if r.settings.get("split", "iid") == "iid" and r.settings.get("attack")]
    assert {r.method for r in iid} == {
        "seccl",
        "fedavg",
        "dssgd",
        "multikrum",
        "median",
        "trimmed-mean",
        "fltrust",
    }
    assert {r.settings["attack_fraction"] for r in iid} == {0.1, 0.2, 0.3}
    assert {r.settings["attack"].split("+")[0] for r in iid} == {
        "label-flip",
        "backdoor",
        "sign-flip",
        "alie",
        "ipm",
        "adaptive-backdoor",
    }
    noniid = {r.method for r in planned if r.settings.get("split") == "dirichlet"}
    assert noniid == {"seccl", "multikrum", "median"}


def test_a_record_rebuilt_from_an_earlier_results_csv_gives_that_row_back(tmp_path: Path) -> None:
    import importlib.util

    from seccl.experiments.comparison import FIELDS, outcome

    spec = importlib.util.spec_from_file_location(
        "import_comparison_records", Path(__file__).parents[2] / "scripts" / "import_comparison_records.py"
    )
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    run = next(
        r for r in load_experiment(experiment_path("compare")).runs if r.name.startswith("e0.2-backdoor")
    )
    row = dict.fromkeys(FIELDS, "") | {
        "run": run.name,
        "group": "e0.2",
        "method": run.method,
        "attack": "backdoor+collude-votes",
        "attack_fraction": "0.2",
        "seed": "0",
        "split": "iid",
        "final_accuracy": "0.93",
        "final_macro_f1": "0.92",
        "best_accuracy": "0.94",
        "attack_success_rate": "0.5",
        "adversaries_used": "7",
        "slots": "40",
        "seconds": "99.5",
    }
    rounds = [
        {"run": run.name, "round": "1", "accuracy": "0.94", "macro_f1": "0.9", "attack_success_rate": "0.1"},
        {"run": run.name, "round": "2", "accuracy": "0.93", "macro_f1": "0.92", "attack_success_rate": "0.5"},
    ]
    record = script.rebuilt_record(row, rounds, run.settings, "a test")
    (tmp_path / "metrics.json").write_text(json.dumps(record))

    got = outcome(run, tmp_path)

    assert record["imported"] == "a test"
    assert (got.adversaries_used, got.slots, got.best_accuracy, got.attack_success_rate) == (7, 40, 0.94, 0.5)
    assert (got.attack, got.attack_fraction, got.seed, got.final_accuracy) == (
        "backdoor+collude-votes",
        0.2,
        0,
        0.93,
    )


def test_the_honest_updates_a_filtering_rule_kept_out_are_counted_per_round(tmp_path: Path) -> None:
    from seccl.experiments.comparison import outcome

    runs = {r.name: r for r in load_experiment(experiment_path("election")).runs}
    krum = runs["e0.3-backdoor+collude-plausible-multikrum-seed0"]
    gate = runs["e0.3-backdoor+collude-plausible-seccl-gate-seed0"]
    median = runs["e0.3-backdoor+collude-plausible-median-seed0"]
    config = {"participants": 20, "seed": 0, "split": "iid", "attack": "backdoor", "attack_fraction": 0.3}
    federated = {
        "config": config,
        "adversaries": [0, 1, 2, 3, 4, 5],
        "initial_accuracy": 0.1,
        "final_accuracy": 0.9,
        "final_macro_f1": 0.9,
        "rounds": [  # 14 honest: 12 kept in round 1 (2 out), 13 of 14 kept in round 2 (1 out)
            {
                "round": 1,
                "accuracy": 0.8,
                "macro_f1": 0.8,
                "kept": list(range(6, 18)),
                "adversaries_kept": [],
                "extra": {},
            },
            {
                "round": 2,
                "accuracy": 0.9,
                "macro_f1": 0.9,
                "kept": [0, *range(7, 20)],
                "adversaries_kept": [0],
                "extra": {},
            },
        ],
    }
    session = federated | {
        "rounds": [
            {"round": 1, "accuracy": 0.8, "macro_f1": 0.8, "elected": [6, 7], "honest_kept_out": 3.0},
            {"round": 2, "accuracy": 0.9, "macro_f1": 0.9, "elected": [6, 8], "honest_kept_out": 0.0},
        ]
    }
    for name, record in (("krum", federated), ("gate", session), ("median", federated)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(record))

    assert outcome(krum, tmp_path / "krum").honest_kept_out == 1.5
    assert outcome(gate, tmp_path / "gate").honest_kept_out == 1.5
    assert outcome(median, tmp_path / "median").honest_kept_out is None  # every update takes part
