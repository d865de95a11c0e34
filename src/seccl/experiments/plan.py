"""An experiment's plan: its runs, read from its TOML file, where it keeps them, and which are finished.

A finished run's record is a copy of its result file (``metrics.json``, or ``baseline.json`` for a
baseline) under ``RESULTS/records/RUN/``: the reports are written from the records alone, and a run
with a record is finished, so the results directory (kilobytes per run) can be committed as the
runs finish and a fresh clone resumes the experiment from it; the runs themselves (chains, models,
messages: megabytes each) stay in the work directory (see :class:`Places`).

A run's ``method`` (a setting of the file, not of the run) says what runs it: ``seccl`` (the
default) a SecCL session (`seccl run`; ``seccl-gate`` one with ``election = "gram-gate"``), any
rule of ``seccl.experiments.baselines`` a chain-free
federated run with that rule (`seccl federated`). ``order_by`` (a list of setting names) sorts
the runs by those settings, stably, so that for example every seed-0 run comes first;
``report = "methods"`` writes the comparison's tables (``seccl.experiments.comparison``). A group's
``baseline_epochs`` adds a centralized baseline, and its ``baseline_seeds`` one per seed, which the
report then gives as mean ± std like the runs."""

from __future__ import annotations

import fnmatch
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from seccl.files import atomic_write_bytes
from seccl.runs.config import BASELINE_FIELDS, FIELD_NAMES, ConfigError, config_from

BUILT_IN = ("fig4", "fig5", "compare", "election")
"""The experiments shipped with SecCL (``src/seccl/experiments/grids/NAME.toml``)."""


SECCL_METHODS: dict[str, dict[str, str]] = {"seccl": {}, "seccl-gate": {"election": "gram-gate"}}
"""The methods that run a SecCL session (`seccl run`), and the settings each implies: the paper's
Borda election, and the hardened gram-gate election (issue 23)."""


@dataclass(frozen=True)
class PlannedRun:
    """One run (or centralized baseline) of an experiment: its name, its group and its settings."""

    name: str
    group: str
    settings: dict[str, Any]
    baseline_epochs: int | None = None  # set for a baseline
    method: str = "seccl"  # "seccl-gate", or a rule of seccl.experiments.baselines: a chain-free run

    @property
    def is_baseline(self) -> bool:
        return self.baseline_epochs is not None

    @property
    def runs_as(self) -> str:
        """Its method, the name `seccl experiment --methods` selects it by (``centralized`` for a
        baseline, whose ``method`` field means nothing)."""
        return "centralized" if self.is_baseline else self.method

    @property
    def is_federated(self) -> bool:
        return self.method not in SECCL_METHODS and not self.is_baseline


@dataclass(frozen=True)
class Selection:
    """Which of an experiment's runs a call runs (`seccl experiment --methods`, `--runs`): those
    of the given methods whose names match one of the given shell patterns; None selects every
    run. The others are left for a later call."""

    methods: frozenset[str] | None = None
    patterns: tuple[str, ...] | None = None

    def wants(self, run: PlannedRun) -> bool:
        return (self.methods is None or run.runs_as in self.methods) and (
            self.patterns is None or any(fnmatch.fnmatchcase(run.name, p) for p in self.patterns)
        )

    def argv(self) -> list[str]:
        """The flags that make the same selection (for the helper workers)."""
        methods = ["--methods", ",".join(sorted(self.methods))] if self.methods is not None else []
        return methods + (["--runs", ",".join(self.patterns)] if self.patterns is not None else [])

    def check(self, experiment: Experiment) -> None:
        """Raise :class:`ConfigError` for a method the experiment lacks, a pattern that matches
        none of its runs, or an empty list."""
        if self.methods is not None:
            known = {run.runs_as for run in experiment.runs}
            unknown = sorted(self.methods - known)
            if unknown or not self.methods:
                raise ConfigError(
                    f"--methods: the experiment has no runs of {', '.join(unknown) or 'an empty list'}"
                    f" (its methods: {', '.join(sorted(known))})"
                )
        if self.patterns is not None:
            names = [run.name for run in experiment.runs]
            unmatched = [p for p in self.patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]
            if unmatched or not self.patterns:
                missing = ", ".join(unmatched) or "an empty list"
                raise ConfigError(
                    f"--runs: no run of the experiment is named like {missing}"
                    " (shell patterns, e.g. 'e0.3-*-seed2')"
                )


@dataclass(frozen=True)
class Headline:
    """A comparison's headline (``[headline]``): one method against the best of several, per attack
    and e, with other methods shown beside them as they are."""

    method: str
    best_of: tuple[str, ...]
    beside: tuple[str, ...] = ()


@dataclass
class Experiment:
    """A parsed experiment file."""

    name: str
    title: str
    runs: list[PlannedRun] = field(default_factory=list)
    report: str = "rounds"  # "rounds": accuracy per round per group; "methods": the comparison
    headline: Headline | None = None  # with report = "methods" only


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
            if method not in (*SECCL_METHODS, *METHODS):
                raise ConfigError(
                    f"experiment {path}, group {gname}: method {method!r}; "
                    f"allowed: {', '.join(SECCL_METHODS)}, {', '.join(METHODS)}"
                )
            settings.update(SECCL_METHODS.get(method, {}))
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
    if "headline" in raw:
        experiment.headline = _headline(path, raw["headline"], experiment)
    return experiment


def _headline(path: Path, raw: Any, experiment: Experiment) -> Headline:
    """``[headline]``, checked against the methods the experiment runs."""
    if experiment.report != "methods":
        raise ConfigError(f'experiment {path}: a headline needs report = "methods"')
    if not isinstance(raw, dict) or not isinstance(raw.get("method"), str):
        raise ConfigError(f"experiment {path}: headline needs method = NAME and best_of = [NAMES]")
    lists = {k: raw.get(k, []) for k in ("best_of", "beside")}
    if any(not isinstance(v, list) or not all(isinstance(m, str) for m in v) for v in lists.values()):
        raise ConfigError(f"experiment {path}: headline's best_of and beside are lists of methods")
    run = {r.method for r in experiment.runs}
    named = [raw["method"], *lists["best_of"], *lists["beside"]]
    missing = sorted(set(named) - run)
    if missing or not lists["best_of"] or len(set(named)) != len(named) or set(raw) - {"method", *lists}:
        raise ConfigError(
            f"experiment {path}: headline names {', '.join(named) or 'nothing'}; it needs a method and"
            f" best_of (and may have beside), distinct methods the experiment runs"
            + (f" (it runs none named {', '.join(missing)})" if missing else "")
        )
    return Headline(raw["method"], tuple(lists["best_of"]), tuple(lists["beside"]))


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
