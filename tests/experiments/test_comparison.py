"""`seccl experiment compare` on a tiny grid: SecCL sessions and chain-free baselines under the
same attack, one row per run, finished runs skipped, a run cut short run again to the same result."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from seccl.experiments.cli import main
from seccl.experiments.grid import experiment_path, load_experiment

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
    assert (out / "g" / "comparison.png").read_bytes()[:4] == b"\x89PNG"

    # A chain-free run leaves its one file only when it finishes: without it, it runs again.
    cut = out / "runs" / "g-alie+collude-votes-median-seed1" / "metrics.json"
    before = json.loads(cut.read_text())
    cut.unlink()
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
