"""`seccl experiment`: an experiment is a TOML file of runs (a grid of settings per group, and a
centralized baseline per group); running it runs each run in turn, skips those already finished,
resumes those cut short, and after each one records it and rewrites the experiment's CSV, plots and
table.

A finished run's record is a copy of its result file (``metrics.json``, or ``baseline.json`` for a
baseline) under ``RESULTS/records/RUN/``: the reports are written from the records alone, and a run
with a record is finished, so the results directory (kilobytes per run) can be committed as the
runs finish and a fresh clone resumes the experiment from it; the runs themselves (chains, models,
messages: megabytes each) stay in the work directory (see :class:`Places`).

A run's ``method`` (a setting of the file, not of the run) says what runs it: ``seccl`` (the
default) a SecCL session (`seccl run`), any rule of ``seccl.experiments.baselines`` a chain-free
federated run with that rule (`seccl federated`). ``order_by`` (a list of setting names) sorts
the runs by those settings, stably, so that for example every seed-0 run comes first;
``report = "methods"`` writes the comparison's tables (``seccl.experiments.comparison``). A group's
``baseline_epochs`` adds a centralized baseline, and its ``baseline_seeds`` one per seed, which the
report then gives as mean ± std like the runs."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import itertools
import json
import re
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from seccl.files import atomic_write_bytes
from seccl.runs.config import BASELINE_FIELDS, FIELD_NAMES, ConfigError, config_from

BUILT_IN = ("fig4", "fig5", "compare")
"""The experiments shipped with SecCL (``src/seccl/experiments/grids/NAME.toml``)."""


@dataclass(frozen=True)
class PlannedRun:
    """One run (or centralized baseline) of an experiment: its name, its group and its settings."""

    name: str
    group: str
    settings: dict[str, Any]
    baseline_epochs: int | None = None  # set for a baseline
    method: str = "seccl"  # or a rule of seccl.experiments.baselines: a chain-free run

    @property
    def is_baseline(self) -> bool:
        return self.baseline_epochs is not None

    @property
    def is_federated(self) -> bool:
        return self.method != "seccl" and not self.is_baseline


@dataclass
class Experiment:
    """A parsed experiment file."""

    name: str
    title: str
    runs: list[PlannedRun] = field(default_factory=list)
    report: str = "rounds"  # "rounds": accuracy per round per group; "methods": the comparison


@dataclass(frozen=True)
class Places:
    """Where an experiment keeps what: ``results`` holds the reports and every finished run's
    record (small, meant to be committed); ``work`` the runs themselves, their configs, the
    workers' claims and logs (large, not meant to be committed). They may be one directory."""

    results: Path
    work: Path

    def run_dir(self, name: str) -> Path:
        return self.work / "runs" / name

    def record_dir(self, name: str) -> Path:
        return self.results / "records" / name


def result_file(run: PlannedRun) -> str:
    """The file a finished run leaves, the one its record copies."""
    return "baseline.json" if run.is_baseline else "metrics.json"


def experiment_path(name: str) -> Path:
    """A built-in experiment's file, or ``name`` itself when it is a path."""
    if name in BUILT_IN:
        return Path(str(resources.files("seccl.experiments").joinpath("grids", f"{name}.toml")))
    path = Path(name)
    if not path.is_file():
        raise ConfigError(f"experiment: got {name!r}; allowed: {', '.join(BUILT_IN)} or a TOML file")
    return path


def load_experiment(path: Path) -> Experiment:
    """The runs an experiment file plans, every one's settings validated before any runs."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"experiment {path}: {exc}") from None
    from seccl.experiments.baselines import METHODS

    common = dict(raw.get("settings", {}))
    report = str(raw.get("report", "rounds"))
    if report not in ("rounds", "methods"):
        raise ConfigError(f"experiment {path}: report must be 'rounds' or 'methods', got {report!r}")
    experiment = Experiment(Path(path).stem, str(raw.get("title", Path(path).stem)), report=report)
    for group in raw.get("groups", []):
        gname = str(group["name"])
        base = {**common, **group.get("settings", {})}
        # A grid (`vary`: every combination of the listed values), listed `cases`, or both: then
        # every case at every combination of the grid (fig5's cases, each for several seeds).
        vary: dict[str, list[Any]] = dict(group.get("vary", {}))
        keys = sorted(vary)
        # itertools.product of no lists is one empty combination: no grid means no grid runs.
        grid = [
            dict(zip(keys, values, strict=True)) for values in itertools.product(*(vary[k] for k in keys))
        ]
        cases: list[tuple[str, dict[str, Any]]] = []
        for case in group.get("cases", []):
            if "label" not in case:
                raise ConfigError(f"experiment {path}, group {gname}: every case needs a label")
            cases.append((str(case["label"]), {k: v for k, v in case.items() if k != "label"}))
        combos: list[tuple[str | None, dict[str, Any]]] = (
            [(None, point) for point in grid]
            if not cases
            else [(label, {**case, **point}) for label, case in cases for point in grid]
        )
        combos = combos if vary or cases else []
        for label, combo in combos:
            suffix = (f"-{label}" if label else "") + "".join(f"-{_tag(k)}{_text(combo[k])}" for k in keys)
            settings = {**base, **combo}
            method = str(settings.pop("method", "seccl"))
            if method not in ("seccl", *METHODS):
                raise ConfigError(
                    f"experiment {path}, group {gname}: method {method!r}; "
                    f"allowed: seccl, {', '.join(METHODS)}"
                )
            experiment.runs.append(PlannedRun(f"{gname}{suffix}", gname, settings, method=method))
        if "baseline_epochs" in group:
            settings = {k: v for k, v in base.items() if k in BASELINE_FIELDS}
            epochs = int(group["baseline_epochs"])  # a centralized baseline has no method
            # `baseline_seeds`: a baseline per seed (each its own split, initial model and
            # shuffling), so that a gap between the runs and the baseline has both spreads.
            seeds = group.get("baseline_seeds")
            if seeds is None:
                experiment.runs.append(PlannedRun(f"{gname}-baseline", gname, settings, epochs))
            elif not isinstance(seeds, list) or not seeds:
                raise ConfigError(f"experiment {path}, group {gname}: baseline_seeds must be a list of seeds")
            else:
                experiment.runs += [
                    PlannedRun(f"{gname}-baseline-seed{seed}", gname, {**settings, "seed": seed}, epochs)
                    for seed in seeds
                ]
    names = [r.name for r in experiment.runs]
    if len(set(names)) != len(names) or not names:
        raise ConfigError(f"experiment {path}: its runs need distinct names, and at least one run")
    for run in experiment.runs:
        unknown = sorted(set(run.settings) - set(FIELD_NAMES))
        if unknown:
            raise ConfigError(f"experiment {path}, run {run.name}: unknown settings {', '.join(unknown)}")
        config_from(run.settings)  # every value checked now, not after hours of earlier runs
    order = [str(k) for k in raw.get("order_by", [])]
    unknown = sorted(set(order) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"experiment {path}: order_by names unknown settings {', '.join(unknown)}")
    if order:  # stable: within equal keys, the file's order
        experiment.runs.sort(key=lambda run: tuple(getattr(config_from(run.settings), k) for k in order))
    return experiment


_TAGS = {
    "participants": "n",
    "candidate_fraction": "l",
    "attack_fraction": "e",
    "seed": "seed",
    "dataset": "",
    "method": "",
    "attack": "",
}


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _tag(key: str) -> str:
    return _TAGS.get(key, key.replace("_", "-"))


RunOne = Callable[[list[str]], int]
"""Runs one `seccl` command line in-process (``seccl.cli.main.main``); returns its exit code."""


def status_of(run: PlannedRun, places: Places) -> str:
    """``done`` (recorded, or finished in the work directory and about to be recorded),
    ``partial`` (a run cut short: resume it) or ``new``."""
    if has_record(run, places):
        return "done"
    return _run_status(run, places.run_dir(run.name))


def has_record(run: PlannedRun, places: Places) -> bool:
    return (places.record_dir(run.name) / result_file(run)).is_file()


def _run_status(run: PlannedRun, directory: Path) -> str:
    if run.is_baseline:
        return "done" if (directory / "baseline.json").is_file() else "new"
    if run.is_federated:  # one file, written atomically when the run ends: done, or start again
        return "done" if (directory / "metrics.json").is_file() else "new"
    described = directory / "run.json"
    if not described.is_file():
        return "new"
    return "done" if json.loads(described.read_text()).get("complete") else "partial"


# Settings that say where or how a run ran, not what it computed.
_PLACE_SETTINGS = frozenset({"out_dir", "data_root", "chain", "chain_id", "workers"})


def _other_settings(run: PlannedRun, result: Path) -> list[str]:
    """The settings in which the finished result ``result`` differs from what ``run`` plans, as
    ``name: recorded X, planned Y``; none for a result of this run."""
    recorded = json.loads(result.read_text()).get("config", {})
    planned = config_from(run.settings).to_dict()
    return [
        f"{key}: recorded {recorded[key]!r}, planned {planned[key]!r}"
        for key in sorted(set(recorded) & set(planned) - _PLACE_SETTINGS)
        if recorded[key] != planned[key]
    ]


def check_records(experiment: Experiment, places: Places) -> None:
    """Refuse (ConfigError) when a record was made with other settings than its run now plans
    (the experiment file was edited, say): its results would be reported as this run's."""
    for run in experiment.runs:
        if has_record(run, places):
            other = _other_settings(run, places.record_dir(run.name) / result_file(run))
            if other:
                raise ConfigError(
                    f"experiment {experiment.name}: the record of {run.name} was made with other "
                    f"settings ({'; '.join(other)}); remove {places.record_dir(run.name)} to run it again"
                )


def record_finished(experiment: Experiment, places: Places) -> list[str]:
    """Record every run finished in the work directory that has no record yet (copied atomically,
    so a record is whole or absent); returns their names. A finished run made with other settings
    than its run plans is refused (ConfigError), not recorded."""
    recorded = []
    for run in experiment.runs:
        if not has_record(run, places) and _run_status(run, places.run_dir(run.name)) == "done":
            source = places.run_dir(run.name) / result_file(run)
            other = _other_settings(run, source)
            if other:
                raise ConfigError(
                    f"experiment {experiment.name}: {places.run_dir(run.name)} was run with other "
                    f"settings ({'; '.join(other)}); remove it to run {run.name} again"
                )
            atomic_write_bytes(places.record_dir(run.name) / result_file(run), source.read_bytes())
            recorded.append(run.name)
    return recorded


def run_experiment(
    experiment: Experiment,
    places: Places,
    run_one: RunOne,
    say: Callable[[str], None] = print,
    *,
    commit: bool = False,
) -> dict[str, str]:
    """Run every planned run not yet finished (in order), recording each and rewriting the outputs
    after it (and committing them with git when ``commit``); returns each run's status at the start
    (``done`` runs were skipped).

    Several workers (processes, on one machine) may run one experiment at once: each claims a run
    with an exclusive lock on its claim file before running it and skips runs another worker holds,
    so no run is run twice; the kernel drops a dead worker's locks, so a killed worker's run is
    resumed by the next worker that reaches it."""
    places.results.mkdir(parents=True, exist_ok=True)
    check_records(experiment, places)
    statuses = {}
    total = len(experiment.runs)
    # The estimate of what is left counts every worker's runs finished since this one began.
    began = time.perf_counter()
    done_before = sum(status_of(r, places) == "done" for r in experiment.runs)
    for k, run in enumerate(experiment.runs, start=1):
        directory = places.run_dir(run.name)
        status = statuses[run.name] = status_of(run, places)
        if status == "done":
            say(f"[{k}/{total}] {run.name}: finished earlier, skipped")
            continue
        with claim(places.work, run.name) as claimed:
            if not claimed:
                say(f"[{k}/{total}] {run.name}: running in another worker, skipped")
                continue
            status = status_of(run, places)  # another worker may have finished it meanwhile
            if status == "done":
                say(f"[{k}/{total}] {run.name}: finished by another worker, skipped")
                continue
            say(f"[{k}/{total}] {run.name}: {'resuming' if status == 'partial' else 'starting'}")
            started = time.perf_counter()
            code = run_one(_command(run, directory, places.work, status))
        if code == 130:  # Ctrl-C or SIGTERM: the run said how far it got; the next call resumes it
            raise KeyboardInterrupt
        if code not in (0, 1):  # 1: evidence found, expected under attack and kept in the run
            raise ConfigError(f"experiment run {run.name} failed with exit code {code}; see above")
        now = time.perf_counter()
        done = sum(status_of(r, places) == "done" for r in experiment.runs)
        left = (total - done) * (now - began) / max(1, done - done_before)
        say(
            f"[{k}/{total}] {run.name}: done in {now - started:.0f} s; {done} of {total} runs finished"
            + (f", about {left / 3600:.1f} h left at this pace" if done < total else "")
        )
        write_outputs(experiment, places, say, commit=commit)
    write_outputs(experiment, places, say, commit=commit)
    return statuses


@contextlib.contextmanager
def claim(out: Path, name: str) -> Iterator[bool]:
    """Hold the exclusive claim on the run ``name`` of the experiment in ``out``,
    if no other process holds it: yields whether it was obtained. The claim is a ``flock`` on
    ``out/claims/NAME.lock``, released when the block ends or the process dies."""
    (out / "claims").mkdir(parents=True, exist_ok=True)
    with open(out / "claims" / f"{name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _command(run: PlannedRun, directory: Path, out: Path, status: str) -> list[str]:
    if status == "partial" and not run.is_federated:
        return ["run", "--resume", str(directory), "--no-progress", "--allow-evidence"]
    config = out / "configs" / f"{run.name}.toml"
    settings = {**run.settings, "out_dir": str(directory)}
    text = config_from(settings).to_toml()
    if run.is_baseline:  # only what `seccl baseline` reads, so it has nothing to warn about
        keep = {*BASELINE_FIELDS, "out_dir"}
        text = "".join(
            line + "\n" for line in text.splitlines() if line.split(" ", 1)[0].lstrip("# ") in keep
        )
    if run.is_federated:  # no chain, and one process: leave out what `seccl federated` has no use for
        drop = {"chain", "chain_id", "workers"}
        text = "".join(
            line + "\n" for line in text.splitlines() if line.split(" ", 1)[0].lstrip("# ") not in drop
        )
    atomic_write_bytes(config, text.encode())
    if run.is_baseline:
        return ["baseline", "--config", str(config), "--epochs", str(run.baseline_epochs)]
    if run.is_federated:
        return ["federated", "--config", str(config), "--method", run.method]
    return ["run", "--config", str(config), "--no-progress", "--allow-evidence"]


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
        from seccl.experiments.comparison import write_comparison

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
    from seccl.experiments.comparison import spread

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
    from seccl.experiments.comparison import spread

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
    from seccl.runs.compare import load_entry, plot_over_seeds

    curves: dict[str, list[list[float]]] = {}
    for run in runs:
        curves.setdefault(_without_seed(run.name), []).append(
            load_entry(places.record_dir(run.name)).accuracy
        )
    entries = [load_entry(places.record_dir(b.name)) for b in baselines]
    plot_over_seeds(curves, entries, places.results / group / "seeds.png")


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
