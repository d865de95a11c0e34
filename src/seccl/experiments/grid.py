"""`seccl experiment`: an experiment is a TOML file of runs (a grid of settings per group, and a
centralized baseline per group); running it runs each run in turn, skips those already finished,
resumes those cut short, and after each one records it and rewrites the experiment's CSV, plots and
table.

What an experiment plans, and where it keeps what: :mod:`seccl.experiments.plan`; its reports:
:mod:`seccl.experiments.reports`."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import seccl
from seccl.experiments.plan import Experiment, Places, PlannedRun, Selection, check_records, status_of
from seccl.experiments.reports import write_outputs
from seccl.files import atomic_write_bytes
from seccl.runs.config import BASELINE_FIELDS, config_from

EVERY_RUN = Selection()
PACKAGE = Path(seccl.__file__).parent
"""The installed seccl package: its sources, contract artifacts and experiment files."""
RunOne = Callable[[list[str]], int]
"""Runs one `seccl` command line in-process (``seccl.cli.main.main``); returns its exit code."""


def run_experiment(
    experiment: Experiment,
    places: Places,
    run_one: RunOne,
    say: Callable[[str], None] = print,
    *,
    commit: bool = False,
    selection: Selection = EVERY_RUN,
    code_root: Path = PACKAGE,
) -> dict[str, str]:
    """Run every planned run not yet finished (in order), recording each and rewriting the outputs
    after it (and committing them with git when ``commit``); returns each run's status at the start
    (``done`` runs were skipped), or ``failed`` for a run that failed (the others still run). Only
    the runs ``selection`` wants run; the others are left for a later call (status ``left``), and
    the reports still cover every record.

    Several workers (processes, on one machine) may run one experiment at once: each claims a run
    with an exclusive lock on its claim file before running it and skips runs another worker holds,
    so no run is run twice; the kernel drops a dead worker's locks, so a killed worker's run is
    resumed by the next worker that reaches it.

    A worker runs its runs in its own process, with the code it imported when it started: when
    the files under ``code_root`` (seccl's sources and contracts) change, it starts no further run
    (status ``stopped``), so that no run is begun, or resumed, under code the tree no longer
    holds."""
    places.results.mkdir(parents=True, exist_ok=True)
    check_records(experiment, places)
    started_with = code_fingerprint(code_root)
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
        if not selection.wants(run):
            statuses[run.name] = "left"
            say(f"[{k}/{total}] {run.name}: not selected (--methods, --runs), left for later")
            continue
        if code_fingerprint(code_root) != started_with:
            statuses[run.name] = "stopped"
            say(
                f"[{k}/{total}] {run.name}: not started: seccl's code or contracts changed since this "
                "worker began; start the experiment again to run the rest under the new code"
            )
            break
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
            # One run's failure (a bad setting, a run cut short under other code) must not stop
            # hours of others: its directory stays as it is, and the call ends with exit 1.
            statuses[run.name] = "failed"
            say(f"[{k}/{total}] {run.name}: failed with exit code {code} (see above); the others go on")
            continue
        now = time.perf_counter()
        done = sum(status_of(r, places) == "done" for r in experiment.runs)
        # The estimate counts only the runs this call will run (not those it leaves for later).
        to_run = sum(status_of(r, places) != "done" and selection.wants(r) for r in experiment.runs)
        left = to_run * (now - began) / max(1, done - done_before)
        say(
            f"[{k}/{total}] {run.name}: done in {now - started:.0f} s; {done} of {total} runs finished"
            + (f", about {left / 3600:.1f} h left at this pace" if to_run else "")
        )
        write_outputs(experiment, places, say, commit=commit)
    write_outputs(experiment, places, say, commit=commit)
    return statuses


def code_fingerprint(root: Path) -> str:
    """A digest of the sources, contract artifacts and experiment files under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".json", ".toml") and path.is_file():
            digest.update(f"{path.relative_to(root)}\0{path.stat().st_size}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


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
