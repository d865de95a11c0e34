"""Rebuild the comparison's run records from the results.csv and rounds.csv an earlier session
committed, for the runs whose run directories (and so their own metrics.json) were lost.

Before records existed, `seccl experiment compare` kept each run's result only in its run
directory, which was not committed; what was committed were the reports. This rebuilds, for every
run of results.csv without a record, a record holding exactly what results.csv and rounds.csv kept:
per round the accuracy, macro-F1 and backdoor success rate; per run the final figures, the seconds
and the totals of adversaries' updates used and of slots. Each such record says so in its
``imported`` field. It then checks that the report rebuilt from the records gives every row of the
old results.csv back, value for value, and refuses to write anything otherwise.

    .venv/bin/python scripts/import_comparison_records.py docs/results/compare
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from seccl.experiments.comparison import FIELDS, outcome
from seccl.runs.config import config_from
from seccl.experiments.plan import Places, experiment_path, has_record, load_experiment
from seccl.files import atomic_write_bytes


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


def rebuilt_record(row: dict[str, str], rounds: list[dict[str, str]], settings: dict, source: str) -> dict:
    """A record (metrics.json) of one finished run, from its row of results.csv and its rounds."""
    return {
        "imported": source,
        "config": config_from(settings).to_dict(),
        "final_accuracy": float(row["final_accuracy"]),
        "final_macro_f1": float(row["final_macro_f1"]),
        "initial_accuracy": None,  # not kept by results.csv
        "diverged_round": None if row["diverged_round"] == "" else int(row["diverged_round"]),
        "seconds": float(row["seconds"]),
        "adversaries_used": int(row["adversaries_used"]),
        "slots": int(row["slots"]),
        "rounds": [
            {
                "round": int(r["round"]),
                "accuracy": float(r["accuracy"]),
                "macro_f1": float(r["macro_f1"]),
                "attack_success_rate": _number(r["attack_success_rate"]),
            }
            for r in rounds
        ],
    }


def _same(old: str, new: object) -> bool:
    if old == "" or new is None:
        return old == "" and new is None
    try:
        return math.isclose(float(old), float(new), rel_tol=1e-12, abs_tol=1e-12)  # type: ignore[arg-type]
    except ValueError:
        return old == str(new)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, help="the comparison's results directory (with results.csv)")
    parser.add_argument("--source", default="an earlier session's results.csv and rounds.csv")
    args = parser.parse_args()
    experiment = load_experiment(experiment_path("compare"))
    planned = {run.name: run for run in experiment.runs}
    places = Places(results=args.results, work=args.results)
    rows = list(csv.DictReader((args.results / "results.csv").open()))
    per_round: dict[str, list[dict[str, str]]] = {}
    for r in csv.DictReader((args.results / "rounds.csv").open()):
        per_round.setdefault(r["run"], []).append(r)
    source = (
        f"rebuilt from {args.source}: the run finished before records existed, and its own "
        "metrics.json was lost with its run directory; this holds what results.csv and rounds.csv kept"
    )
    records = {}
    for row in rows:
        run = planned.get(row["run"])
        if run is None:
            print(f"{row['run']}: not a run of the comparison", file=sys.stderr)
            return 1
        if has_record(run, places):
            continue
        records[run.name] = rebuilt_record(row, per_round[run.name], run.settings, source)
    staging = args.results / ".import-check"
    for name, record in records.items():  # check first, write only if every row comes back
        atomic_write_bytes(staging / name / "metrics.json", json.dumps(record).encode())
        got = outcome(planned[name], staging / name).row()
        old = next(r for r in rows if r["run"] == name)
        wrong = [k for k in FIELDS if not _same(old[k], got[k])]
        if wrong:
            print(f"{name}: the rebuilt record gives other {', '.join(wrong)}", file=sys.stderr)
            return 1
    for name, record in records.items():
        atomic_write_bytes(
            places.record_dir(name) / "metrics.json", (json.dumps(record, indent=1) + "\n").encode()
        )
        (staging / name / "metrics.json").unlink()
        (staging / name).rmdir()
    if staging.exists():
        staging.rmdir()
    print(f"{len(records)} records rebuilt in {args.results / 'records'}; every row of results.csv checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
