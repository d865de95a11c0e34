"""`seccl run`: a SecCL session on a real EVM, new or resumed from its run directory."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any

from seccl.cli.common import EXIT_EVIDENCE, say, warn
from seccl.cli.options import Formatter, add_run_options, settings_from
from seccl.runs.config import FIELD_NAMES, ConfigError, RunConfig, check_given, check_output_dir
from seccl.runs.directory import check_writable, fresh_run_dir, resume_config, run_into_dir
from seccl.runs.settings import SETTINGS


def add_parser(sub: Any) -> None:
    from seccl.roles.adversaries.server import SERVER_ATTACKS

    parser = sub.add_parser(
        "run",
        help="run a SecCL session on a real EVM",
        description="Run a SecCL session. Every option can also come from a TOML file (--config); "
        "flags override it. Server attacks: " + ", ".join(SERVER_ATTACKS) + ".",
        formatter_class=Formatter,
    )
    add_run_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return _resume(args)
    config, given, warnings = settings_from(args, FIELD_NAMES)
    check_given(config, given)
    fresh = fresh_run_dir(config)
    if fresh.run_dir != config.run_dir:
        notice = f"seccl: {config.run_dir} already holds a run; this one goes to {fresh.run_dir}"
        print(notice, file=sys.stderr)
    check_output_dir(fresh.run_dir)
    check_writable(fresh.run_dir, SETTINGS["out_dir"].label("out_dir"))
    return _execute(args, fresh, warnings, resume=False)


def _resume(args: argparse.Namespace) -> int:
    """``seccl run --resume RUN_DIR``: the run's own settings, keys and chain, from its last
    checkpoint."""
    run_dir = args.resume
    given = [name for name in FIELD_NAMES if getattr(args, name, None) is not None]
    if args.config is not None or given:
        flags = ", ".join(SETTINGS[name].flags[0] for name in given) or "--config"
        raise ConfigError(
            f"resume (--resume): got {flags} as well; a resumed run keeps the settings in "
            f"{run_dir / 'config.toml'}; allowed: --resume RUN_DIR, with --no-progress or "
            "--allow-evidence only"
        )
    config = resume_config(run_dir)
    if config is None:
        say(f"{run_dir} is complete: nothing to resume")
        return 0
    return _execute(args, config, [], resume=True)


def _execute(args: argparse.Namespace, config: RunConfig, warnings: list[str], *, resume: bool) -> int:
    # Imported here, not above: they pull in torch and matplotlib, which `seccl --help` never needs.
    from seccl.runs.launch import check_chain
    from seccl.runs.records import chain_cost, write_run

    run_dir = config.run_dir
    check_chain(config)
    warn(warnings)
    on_terminal = sys.stderr.isatty()
    show = not args.no_progress
    say(
        f"SecCL: {config.participants} participants, {config.rounds} rounds, "
        f"{config.elected_label()} "
        f"(l={config.candidate_fraction:g}), s={config.share_fraction:g}, {config.dataset} ({config.split}), "
        f"{config.local_epochs} local epochs, chain {config.chain}, seed {config.seed}"
    )
    started = time.perf_counter()
    try:
        result = run_into_dir(
            config,
            resume=resume,
            warnings=warnings,
            log=say,
            progress=show and on_terminal,
            progress_log=_progress_line if show and not on_terminal else None,
        )
    except KeyboardInterrupt:
        print(
            f"seccl: interrupted; every finished round is saved. Resume with: seccl run --resume {run_dir}",
            file=sys.stderr,
        )
        raise
    elapsed = time.perf_counter() - started
    found = bool(result.evidence)
    code = EXIT_EVIDENCE if found and not args.allow_evidence else 0

    files = write_run(
        config, result, run_dir, seconds=round(elapsed, 3), warnings=warnings, exit_code=code, complete=True
    )
    say(
        f"final test accuracy {result.final_accuracy:.4f} after {len(result.rounds)} rounds "
        f"in {elapsed:.1f} s"
    )
    cost = chain_cost(result)
    rounds, session, server = cost["rounds"], cost["session"], cost["server_sent"]
    say(
        f"transactions in the rounds: {rounds['transactions']}, gas {rounds['gas']:,} (every party's, "
        f"{server['transactions']} sent by the server); in the whole session, with its funding and "
        f"deployment: {session['transactions']}, gas {session['gas']:,}"
    )
    if found:
        say(f"EVIDENCE: {len(result.evidence)} findings (see {files['evidence']})")
        findings = Counter(
            f"round {e.round} {e.kind} found by {_who(e.finder_index, e.finder)} about "
            f"{_who(e.subject_index, e.subject)}"
            for e in result.evidence
        )
        for finding, count in findings.items():
            say(f"  {finding}: {count}")
    else:
        say("evidence: none — every message, ballot and model matched the chain")
    say(
        f"run directory: {run_dir}  (metrics.csv, metrics.json, chain.json, evidence.json, "
        "accuracy.png, elected.png, scores.png, loss.png, tensorboard/)"
    )
    if code == EXIT_EVIDENCE:
        print(
            f"seccl: exit {EXIT_EVIDENCE}: evidence was found ({len(result.evidence)} findings); "
            "--allow-evidence exits 0",
            file=sys.stderr,
        )
    return code


def _progress_line(line: str) -> None:
    print(f"  … {line}", file=sys.stderr, flush=True)


def _who(index: int | None, address: str) -> str:
    if index is None:
        return f"the server {address[:10]}" if address else "the server"
    return f"participant {index} ({address[:10]})"
