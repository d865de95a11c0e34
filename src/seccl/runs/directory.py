"""A run's directory: a fresh one for a new run, the checks before resuming one, the session run into it."""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seccl.chain.errors import ChainUnavailableError
from seccl.runs.config import ConfigError, RunConfig, load_config
from seccl.runs.settings import SETTINGS, is_url

if TYPE_CHECKING:
    from seccl.runtime.results import RunResult


def fresh_run_dir(config: RunConfig) -> RunConfig:
    """``config`` with a run directory that holds no earlier run: SecCL never writes over a run.
    A default name already taken gets the UTC time appended; a given ``--out`` that holds a run
    is an error."""
    run_dir = config.run_dir
    if not (run_dir.is_dir() and any(run_dir.iterdir())):
        return config
    if config.out_dir:
        raise ConfigError(
            f"out_dir (--out): {run_dir} already holds a run, and a run is never overwritten; "
            "allowed: a new or empty directory"
        )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return dataclasses.replace(config, out_dir=str(run_dir.with_name(f"{run_dir.name}-{stamp}")))


def check_writable(path: Path, label: str) -> None:
    """Refuse, before any work, an output directory that cannot be made or written (see
    :func:`seccl.deploy.setup.unwritable`, which leaves nothing behind): root passes the
    ``os.access`` check of :func:`seccl.runs.config.check_output_dir` everywhere."""
    from seccl.deploy.setup import unwritable

    problem = unwritable(Path(path))
    if problem is not None:
        raise ConfigError(f"{label}: {problem}; allowed: a directory this user can create and write")


def first_free(path: Path) -> Path:
    """``path``, or the first of ``path-2``, ``path-3``, … that does not exist yet."""
    candidate, k = path, 2
    while candidate.exists():
        candidate, k = Path(f"{path}-{k}"), k + 1
    return candidate


def resume_config(run_dir: Path) -> RunConfig | None:
    """The config to resume the run in ``run_dir`` with: its own settings, writing into it; None
    if the run is complete. A run that never finished setting up starts again in the same
    directory."""
    described = run_dir / "run.json"
    if not (run_dir / "config.toml").is_file() or not described.is_file():
        raise ConfigError(f"resume (--resume): {run_dir} holds no SecCL run (no config.toml and run.json)")
    try:
        document = json.loads(described.read_text())
    except ValueError as exc:
        raise ConfigError(f"resume (--resume): {described} cannot be read: {exc}") from None
    if isinstance(document, dict) and "session" in document and "dropouts" in document:
        raise ConfigError(
            f"resume (--resume): {run_dir} holds a deployment server's records, not a `seccl run` "
            "run: a deployment is not resumed by a simulation"
        )
    if document.get("complete"):
        return None
    config = dataclasses.replace(load_config(run_dir / "config.toml"), out_dir=str(run_dir))
    if config.chain == "embedded":
        raise ConfigError(
            f"resume (--resume): {run_dir} ran on the embedded EVM, whose chain ended with the run; "
            "it cannot be resumed (anvil, the default chain, or --chain URL can be)"
        )
    return config


def run_into_dir(
    config: RunConfig,
    *,
    resume: bool,
    warnings: list[str],
    log: Callable[[str], None],
    progress: bool = False,
    progress_log: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the session of ``config`` into its run directory (from its last checkpoint when
    ``resume``): run.json says the run is incomplete from the start, and every round's results
    are on disk as the round ends. A chain that stops answering during the run is a
    :class:`ConfigError` that says how to resume.

    The data is loaded and checked first: a data set that is missing, or too small for the
    participants, is a :class:`ConfigError` before anything is written, so it never leaves a
    run directory that offers a --resume which would fail the same way."""
    # Imported here, not above: they pull in torch and matplotlib, which `seccl --help` never needs.
    from seccl.runs.launch import participant_data
    from seccl.runs.records import write_run, write_run_start

    run_dir = config.run_dir
    data = participant_data(config)
    started = time.perf_counter()
    if not resume:
        write_run_start(config, run_dir)

    def round_done(partial: Any) -> None:
        write_run(
            config, partial, run_dir, seconds=round(time.perf_counter() - started, 3), warnings=warnings
        )

    return _session(
        config,
        log=log,
        progress=progress,
        progress_log=progress_log,
        on_round=round_done,
        resume=resume,
        data=data,
    )


def _session(config: RunConfig, **kwargs: Any) -> RunResult:
    """run_config, with a chain that fails during the run turned into a clear error."""
    from seccl.chain.session import SessionMismatchError
    from seccl.runs.checkpoint import ResumeError
    from seccl.runs.launch import chain_answers, run_config

    try:
        return run_config(config, **kwargs)
    except ConfigError:
        raise
    except ResumeError as exc:
        raise ConfigError(f"resume (--resume): {exc}") from None
    except SessionMismatchError as exc:
        if not kwargs.get("resume"):
            raise
        # The chain must hold the session the run began, as this seccl commits it: an upgrade
        # between the kill and the resume, or another chain, fails here (not only on code).
        raise ConfigError(
            f"resume (--resume): {exc}: the chain does not hold the session as this seccl expects "
            "it (the run began under another seccl version, or this is another chain); resume it "
            "with the seccl version that began it, or start it again"
        ) from None
    except Exception as exc:
        if not _chain_failed(config, exc, chain_answers):
            raise
        label = SETTINGS["chain"].label("chain")
        where = f"the node at {config.chain}" if is_url(config.chain) else "the anvil node this run started"
        raise ConfigError(
            f"{label}: {where} stopped answering during the run ({type(exc).__name__}: "
            f"{_first_line(exc)}); the run is incomplete: once the chain answers, resume it with "
            f"`seccl run --resume {config.run_dir}`"
        ) from None


def _chain_failed(config: RunConfig, exc: BaseException, answers: Callable[[str], bool]) -> bool:
    if isinstance(exc, ChainUnavailableError):
        return True
    if config.chain == "embedded":
        return False
    if is_url(config.chain):
        return not answers(config.chain)
    from web3.exceptions import Web3Exception

    return isinstance(exc, (OSError, Web3Exception))  # anvil: a refused or dropped connection


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
