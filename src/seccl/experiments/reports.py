"""An experiment's reports, written from its records alone: results.csv, results.md, plots; git commits."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seccl.experiments.comparison import spread, write_comparison
from seccl.experiments.plan import Experiment, Places, PlannedRun, has_record, record_finished
from seccl.files import atomic_write_bytes


def write_outputs(
    experiment: Experiment, places: Places, say: Callable[[str], None] = print, *, commit: bool = False
) -> None:
    """Record the runs finished since the last call, then write results.csv (every finished round
    of every run), a plot and a table per group, and results.md, from the records; with ``commit``,
    commit the results directory (git). Workers of one experiment take turns (a blocking lock), so
    no report is written, nor commit made, from two workers' views at once."""
    (places.work / "claims").mkdir(parents=True, exist_ok=True)
    with open(places.work / "claims" / "report.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        recorded = record_finished(experiment, places)
        _write_outputs(experiment, places)
        if commit:
            done = sum(has_record(r, places) for r in experiment.runs)
            named = ", ".join(recorded[:3]) + (" …" if len(recorded) > 3 else "")
            message = f"results: {experiment.name}, {done} of {len(experiment.runs)} runs" + (
                f" ({named})" if recorded else ""
            )
            commit_results(places.results, message, say)


def commit_results(directory: Path, message: str, say: Callable[[str], None] = print) -> bool:
    """Commit everything under ``directory`` (and nothing else: other staged work is left as it
    was) to the git repository it is in; returns whether a commit was made. A failure (no
    repository, a lock held by another git) is reported, not raised: the records stay on disk and
    the next commit takes them."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True)

    added = git("add", "--all", "--", ".")
    if added.returncode != 0:
        say(f"results not committed: git add: {added.stderr.strip() or added.stdout.strip()}")
        return False
    if git("diff", "--cached", "--quiet", "--", ".").returncode == 0:
        return False  # nothing new
    made = git("commit", "--quiet", "--message", message, "--", ".")
    if made.returncode != 0:
        say(f"results not committed: git commit: {made.stderr.strip() or made.stdout.strip()}")
        return False
    return True


def _write_outputs(experiment: Experiment, places: Places) -> None:
    out = places.results
    if experiment.report == "methods":
        write_comparison(experiment, places)
        return
    from seccl.runs.compare import compare_runs

    rows: list[dict[str, Any]] = []
    groups: dict[str, list[Path]] = {}
    for run in experiment.runs:
        directory = places.record_dir(run.name)
        if not has_record(run, places):
            continue
        groups.setdefault(run.group, []).append(directory)
        rows += _rows(run, directory)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(
        table, fieldnames=["run", "group", "kind", "round", "accuracy", "macro_f1", "seconds"]
    )
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(out / "results.csv", table.getvalue().encode())
    lines = [
        f"# {experiment.title}",
        "",
        f"`seccl experiment {experiment.name}`; {len(rows)} rows in results.csv.",
        "",
    ]
    for group, paths in groups.items():
        done_here = [r for r in experiment.runs if r.group == group and has_record(r, places)]
        finished = [r for r in done_here if not r.is_baseline]
        baselines = [r for r in done_here if r.is_baseline]
        first = min((r.settings.get("seed", 0) for r in finished), default=0)
        # The plot shows every run of the first seed (and its baseline, if there is one per seed);
        # the table every run of every seed.
        seeded = finished + (baselines if len(baselines) > 1 else [])
        later = {r.name for r in seeded if r.settings.get("seed", 0) != first}
        files, text = compare_runs(paths, out / group, plot_only=[p for p in paths if p.name not in later])
        lines += [f"## {group}", "", f"![{group}]({group}/{files['plot'].name})", "", text.strip(), ""]
        spread = spread_over_seeds(finished, places, baselines)
        if spread:
            plot_seeds(finished, baselines, places, group)
            lines += [f"![{group} over seeds]({group}/seeds.png)", "", *spread]
    done = sum(has_record(r, places) for r in experiment.runs)
    lines.append(f"{done} of {len(experiment.runs)} runs finished.")
    atomic_write_bytes(out / "results.md", ("\n".join(lines) + "\n").encode())


def _without_seed(name: str) -> str:
    """A run's name without its ``-seedK`` part: the same for the runs that differ only in seed."""
    return re.sub(r"-seed\d+", "", name)


def spread_over_seeds(runs: list[PlannedRun], places: Places, baselines: list[PlannedRun]) -> list[str]:
    """Markdown lines: for every setting of ``runs`` (finished SecCL runs) run under more than one
    seed, the final and the best accuracy as mean ± sample std over its seeds, and the same for the
    group's centralized ``baselines`` (finished) when there is one per seed; none if no setting has
    a second seed yet."""
    settings: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        label = _without_seed(run.name)
        data = json.loads((places.record_dir(run.name) / "metrics.json").read_text())
        settings.setdefault(label, []).append(data)
    if all(len(records) < 2 for records in settings.values()):
        return []
    lines = [
        "Over seeds (mean ± sample std, number of seeds; ¹ a single seed):",
        "",
        "| runs | seeds | final accuracy | best accuracy | adversaries elected |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for label, records in settings.items():
        seeds = ", ".join(str(r.get("config", {}).get("seed", "?")) for r in records)
        final = [float(r["rounds"][-1]["accuracy"]) for r in records if r["rounds"]]
        best = [max(float(x["accuracy"]) for x in r["rounds"]) for r in records if r["rounds"]]
        elected = sum(len(x.get("adversaries_elected", [])) for r in records for x in r["rounds"])
        slots = sum(len(x.get("elected", [])) for r in records for x in r["rounds"])
        shown = f"{elected} of {slots}" if any(r.get("adversaries") for r in records) else "—"
        lines.append(f"| {label} | {seeds} | {spread(final, 4)} | {spread(best, 4)} | {shown} |")
    if len(baselines) > 1:
        data = [json.loads((places.record_dir(b.name) / "baseline.json").read_text()) for b in baselines]
        seeds = ", ".join(str(b.settings.get("seed", "?")) for b in baselines)
        final = [float(d["accuracy_per_epoch"][-1]) for d in data]
        best = [max(float(a) for a in d["accuracy_per_epoch"]) for d in data]
        label = f"{_without_seed(baselines[0].name)} (centralized, {baselines[0].baseline_epochs} epochs)"
        lines.append(f"| {label} | {seeds} | {spread(final, 4)} | {spread(best, 4)} | — |")
    return [*lines, "", *_rounds_over_seeds(settings)]


def _rounds_over_seeds(settings: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Markdown lines: each setting's test accuracy after every round, mean ± sample std over its
    seeds (the curves of seeds.png, as numbers); rounds a seed has not reached yet are left out."""
    length = max(min(len(r["rounds"]) for r in records) for records in settings.values())
    header = " | ".join(str(k) for k in range(1, length + 1))
    lines = [
        "Accuracy after each round, over seeds (mean ± sample std, number of seeds):",
        "",
        f"| runs | {header} |",
        "| --- |" + " ---: |" * length,
    ]
    for label, records in settings.items():
        reached = min(len(r["rounds"]) for r in records)
        cells = [
            spread([float(r["rounds"][k]["accuracy"]) for r in records], 4) if k < reached else "—"
            for k in range(length)
        ]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return [*lines, ""]


def plot_seeds(runs: list[PlannedRun], baselines: list[PlannedRun], places: Places, group: str) -> None:
    """GROUP/seeds.png: each setting's accuracy per round, mean ± std over its seeds, beside the
    group's centralized baseline (mean ± std over its seeds, when there are several)."""
    from seccl.runs.compare import load_entry, plot_over_seeds, title

    curves: dict[str, list[list[float]]] = {}
    loaded = []
    for run in runs:
        loaded.append(load_entry(places.record_dir(run.name)))
        curves.setdefault(_without_seed(run.name), []).append(loaded[-1].accuracy)
    entries = [load_entry(places.record_dir(b.name)) for b in baselines]
    heading = f"{group} over seeds: " + title(loaded + entries)
    plot_over_seeds(curves, entries, places.results / group / "seeds.png", heading)


def _rows(run: PlannedRun, directory: Path) -> list[dict[str, Any]]:
    if run.is_baseline:
        data = json.loads((directory / "baseline.json").read_text())
        return [
            {
                "run": run.name,
                "group": run.group,
                "kind": "baseline",
                "round": i,
                "accuracy": a,
                "macro_f1": f,
                "seconds": data.get("seconds"),
            }
            for i, (a, f) in enumerate(
                zip(data["accuracy_per_epoch"], data["macro_f1_per_epoch"], strict=True), 1
            )
        ]
    data = json.loads((directory / "metrics.json").read_text())
    return [
        {
            "run": run.name,
            "group": run.group,
            "kind": "seccl",
            "round": r["round"],
            "accuracy": r["accuracy"],
            "macro_f1": r["macro_f1"],
            "seconds": r.get("seconds"),
        }
        for r in data["rounds"]
    ]
