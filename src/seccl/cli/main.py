"""The `seccl` command: `seccl run` (a SecCL session), `seccl baseline` (centralized training),
`seccl compare` (runs side by side) and `seccl verify-evidence` (a run's findings re-checked
against the chain).

Every setting is checked before any data loads or any process starts. A bad input exits 2 with
one line `seccl: <setting>: <what is wrong; what is allowed>` on stderr, never a traceback.
`seccl run` exits 1 when evidence was found (unless --allow-evidence), 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import Field

from seccl.chain.errors import ChainError, ChainUnavailableError
from seccl.runs.config import (
    BASELINE_FIELDS,
    FIELD_NAMES,
    SETTINGS,
    ConfigError,
    RunConfig,
    check_given,
    check_output_dir,
    config_from,
    is_url,
    load_config,
    read_toml,
    validated,
)

EXIT_EVIDENCE = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
DEPLOY_COMMANDS = ("keys", "session", "data", "deploy", "node")
DEFAULT_BASELINE_EPOCHS = 10
MAX_EPOCHS = 1000

# Settings whose default is None but whose text is an integer (pydantic checks every value again).
_INT_SETTINGS = {"per_participant", "chain_id"}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("seccl")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line `seccl: ...` (exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"seccl: {message} (see `{self.prog} --help`)\n")


_METAVARS = {
    "participants": "N",
    "rounds": "R",
    "candidate_fraction": "L",
    "share_fraction": "S",
    "local_epochs": "EPOCHS",
    "learning_rate": "LR",
    "batch_size": "SIZE",
    "data_root": "DIR",
    "alpha": "ALPHA",
    "per_participant": "SAMPLES",
    "validation_fraction": "FRACTION",
    "seed": "SEED",
    "chain": "CHAIN",
    "chain_id": "ID",
    "workers": "W",
    "out_dir": "DIR",
    "attack": "NAME",
    "attack_fraction": "E",
    "attack_start_round": "ROUND",
    "server_attack": "NAME",
    "attack_target": "INDEX",
}


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=min(110, _terminal_width()))


class _RawFormatter(argparse.RawDescriptionHelpFormatter, _Formatter):
    pass


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def _default_text(name: str) -> str:
    setting = SETTINGS[name]
    if setting.default is not None:
        return setting.default
    value = getattr(RunConfig(), name)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _add_setting(parser: argparse.ArgumentParser, name: str) -> None:
    setting = SETTINGS[name]
    default = getattr(RunConfig(), name)
    kind: Callable[[str], Any] = str
    if isinstance(default, float):
        kind = float
    elif isinstance(default, int) or name in _INT_SETTINGS:
        kind = int
    extra: dict[str, Any] = {}
    choices = _choices().get(name)
    if choices:
        extra["choices"] = choices
    help_text = f"{setting.help} (default: {_default_text(name)})".replace("%", "%%")
    if "choices" not in extra:
        extra["metavar"] = _METAVARS[name]
    parser.add_argument(*setting.flags, dest=name, type=kind, default=None, help=help_text, **extra)


def _choices() -> dict[str, tuple[str, ...]]:
    from seccl.learning.aggregation import AGGREGATION_RULES
    from seccl.learning.data import DATASET_NAMES, SPLIT_SCHEMES

    return {"aggregation": AGGREGATION_RULES, "dataset": DATASET_NAMES, "split": SPLIT_SCHEMES}


def build_parser() -> argparse.ArgumentParser:
    from seccl.roles.malicious_server import SERVER_ATTACKS

    parser = _Parser(prog="seccl", description=__doc__, formatter_class=_RawFormatter)
    parser.add_argument("--version", action="version", version=f"seccl {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a SecCL session on a real EVM",
        description="Run a SecCL session. Every option can also come from a TOML file (--config); "
        "flags override it. Server attacks: " + ", ".join(SERVER_ATTACKS) + ".",
        formatter_class=_Formatter,
    )
    _config_flag(run)
    for name in FIELD_NAMES:
        _add_setting(run, name)
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR, killed or interrupted at any point, from its last "
        "finished round, with its own settings, keys and chain (default: a new run)",
    )
    run.add_argument(
        "--allow-evidence",
        action="store_true",
        help="exit 0 even when evidence was found, for experiments with attacks (default: exit 1)",
    )
    run.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar on a terminal, no progress lines elsewhere (default: progress shown)",
    )

    base = sub.add_parser(
        "baseline",
        help="train the same model centrally on the union of the participants' train parts",
        description="The paper's baseline: one model trained centrally on the samples the "
        "participants of the same settings would hold. Writes baseline.json and baseline.png.",
        formatter_class=_Formatter,
    )
    _config_flag(base)
    for name in BASELINE_FIELDS:
        _add_setting(base, name)
    base.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"epochs over the union of the train parts (default: {DEFAULT_BASELINE_EPOCHS})",
    )

    from seccl.experiments.baselines import METHODS

    federated = sub.add_parser(
        "federated",
        help="the comparison's baselines: the same participants and attacks, no chain, a robust rule",
        description="A chain-free federated run on the participants, data and attacks a SecCL "
        "session of the same settings would have, aggregated by a rule of the comparison "
        "(" + ", ".join(METHODS) + "; see seccl.experiments.baselines). Writes metrics.json "
        "into the run directory when the run ends; a run cut short writes nothing.",
        formatter_class=_Formatter,
    )
    _config_flag(federated)
    federated.add_argument("--method", required=True, choices=METHODS, help="the aggregation rule")
    for name in FIELD_NAMES:
        if name not in ("chain", "chain_id", "workers"):
            _add_setting(federated, name)

    compare = sub.add_parser(
        "compare",
        help="overlay runs (and baselines) in one plot and one markdown table",
        description="Overlay the accuracy and macro-F1 of runs (and baselines) in compare.png "
        "and tabulate them in compare.md.",
        formatter_class=_Formatter,
    )
    compare.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run or baseline directories")
    compare.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write compare.png and compare.md (default: runs/compare-<names of the runs>)",
    )

    experiment = sub.add_parser(
        "experiment",
        help="run an experiment: a grid of runs and baselines, resumed where it stopped",
        description="Run the experiment NAME (fig4, fig5, compare) or a TOML file of the same form: every "
        "run not yet finished, in order (runs finished earlier are skipped, runs cut short are "
        "resumed), recording each finished run in OUT/records/ and rewriting results.csv, a plot "
        "and a table per group, and results.md from the records.",
        formatter_class=_Formatter,
    )
    experiment.add_argument("name", metavar="NAME", help="fig4, fig5, compare, or an experiment TOML file")
    experiment.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the results: the reports and every finished run's record, kilobytes per run; a run "
        "with a record here is finished (default: runs/experiments/NAME)",
    )
    experiment.add_argument(
        "--work",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the runs themselves go (DIR/runs/RUN: chain, models, messages, megabytes each), "
        "with their configs, the workers' claims and logs (default: the --out directory)",
    )
    experiment.add_argument(
        "--commit",
        action="store_true",
        help="after each run, commit the --out directory (and nothing else) to the git repository "
        "it is in, so that the results survive the machine and a fresh clone resumes from them",
    )
    experiment.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: record the runs finished in the work directory, rewrite the reports "
        "from the records (and commit them with --commit)",
    )
    experiment.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="K",
        help="run K runs at a time, in K worker processes that claim runs by lock (each worker's "
        "output beyond the first goes to worker-I.log in the work directory); a second `seccl "
        "experiment` on the same directories joins in the same way",
    )

    for name, what, path_help in (
        (
            "verify-evidence",
            "confirm or refute each finding of a run from the chain, trusting neither side",
            "a run directory, or its evidence.json",
        ),
        (
            "audit",
            "re-verify a run from its chain and stored messages alone, trusting neither side",
            "a run directory",
        ),
    ):
        checker = sub.add_parser(name, help=what, formatter_class=_Formatter)
        checker.add_argument("path", type=Path, help=path_help)
        checker.add_argument(
            "--chain",
            dest="chain_url",
            help="a JSON-RPC URL of a node holding the run's chain "
            "(default: the run's persisted anvil state)",
        )
    from seccl.cli.deploy import add_commands

    add_commands(sub, _Formatter)
    return parser


def _config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a TOML file with any of the settings below (default: none)",
    )


def run_options() -> list[tuple[str, str, str]]:
    """(flags, meaning, default) of every option of `seccl run`, as --help shows them: the
    README's option table is checked against this."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    rows = []
    for action in sub.choices["run"]._actions:
        if not action.option_strings or action.dest == "help":
            continue
        text = action.help or ""
        meaning, _, default = text.rpartition(" (default: ")
        rows.append((", ".join(action.option_strings), meaning.replace("%%", "%"), default.rstrip(")")))
    return rows


def options_markdown() -> str:
    """The README's option table of `seccl run`, made from the parser (a test checks the README
    holds exactly this; `python -c "from seccl.cli.main import options_markdown as o;
    print(o())"` prints it)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    def default(text: str) -> str:
        return f"`{text}`" if " " not in text or "<" in text else text

    lines = ["| option | meaning | default |", "| --- | --- | --- |"]
    for flags, meaning, value in run_options():
        names = ", ".join(f"`{f}`" for f in flags.split(", "))
        lines.append(f"| {names} | {cell(meaning)} | {cell(default(value))} |")
    return "\n".join(lines) + "\n"


# ─────────────────────────────── main ───────────────────────────────


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM (timeout, kill, job schedulers) unwinds like Ctrl-C, so every context manager runs
    # and every process the run started (anvil included) is stopped; a second SIGTERM during that
    # clean-up is ignored rather than cutting it short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # one that arrived while another error was being reported
        print("seccl: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error already printed
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        if args.command in DEPLOY_COMMANDS:
            return _deploy(args)
        if args.command == "verify-evidence":
            return _verify_evidence(args.path, args.chain_url)
        if args.command == "audit":
            return _audit(args.path, args.chain_url)
        if args.command == "compare":
            return _compare(args.runs, args.out)
        if args.command == "experiment":
            return _experiment(
                args.name, args.out, args.work, args.jobs, commit=args.commit, report_only=args.report_only
            )
        if args.command == "run":
            return _run(args)
        if args.command == "federated":
            return _federated(args)
        return _baseline(args)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"seccl: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("seccl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("SECCL_DEBUG"):
            traceback.print_exc()
        print(
            f"seccl: internal error ({type(exc).__name__}: {exc}); this is a bug, not your input: "
            "please report it (SECCL_DEBUG=1 prints the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _settings(
    args: argparse.Namespace, allowed: Sequence[str]
) -> tuple[RunConfig, dict[str, str], list[str]]:
    """The config from --config and the flags; the settings the user gave, each with where it
    came from ("" for a flag); and warnings."""
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    warnings: list[str] = []
    if args.config is not None:
        source = f"config (--config) {args.config}"
        table = read_toml(args.config)
        config_from(table, source=source)  # the file's own errors, named by the file
        ignored = sorted(k for k in table if k not in allowed)
        if ignored:
            warnings.append(
                f"settings of {args.config} that `seccl {args.command}` does not use: {', '.join(ignored)}"
            )
        values.update({k: v for k, v in table.items() if k in allowed})
        given.update(dict.fromkeys(values, source))
    flags = {k: v for k, v in vars(args).items() if k in FIELD_NAMES and v is not None}
    values.update(flags)
    given.update(dict.fromkeys(flags, ""))
    return config_from(values), given, warnings


def _say(line: str) -> None:
    print(line, flush=True)


def _progress_line(line: str) -> None:
    print(f"  … {line}", file=sys.stderr, flush=True)


def _fresh_run_dir(config: RunConfig) -> RunConfig:
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
    fresh = run_dir.with_name(f"{run_dir.name}-{stamp}")
    print(f"seccl: {run_dir} already holds a run; this one goes to {fresh}", file=sys.stderr)
    return dataclasses.replace(config, out_dir=str(fresh))


def _run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return _resume(args)
    config, given, warnings = _settings(args, FIELD_NAMES)
    check_given(config, given)
    config = _fresh_run_dir(config)
    check_output_dir(config.run_dir)
    return _execute(args, config, warnings, resume=False)


def _resume(args: argparse.Namespace) -> int:
    """``seccl run --resume RUN_DIR``: the run's own settings, keys and chain, from its last
    checkpoint. A run that never finished setting up starts again in the same directory."""
    run_dir: Path = args.resume
    given = [name for name in FIELD_NAMES if getattr(args, name, None) is not None]
    if args.config is not None or given:
        flags = ", ".join(SETTINGS[name].flags[0] for name in given) or "--config"
        raise ConfigError(
            f"resume (--resume): got {flags} as well; a resumed run keeps the settings in "
            f"{run_dir / 'config.toml'}; allowed: --resume RUN_DIR, with --no-progress or "
            "--allow-evidence only"
        )
    described = run_dir / "run.json"
    if not (run_dir / "config.toml").is_file() or not described.is_file():
        raise ConfigError(f"resume (--resume): {run_dir} holds no SecCL run (no config.toml and run.json)")
    try:
        if json.loads(described.read_text()).get("complete"):
            _say(f"{run_dir} is complete: nothing to resume")
            return 0
    except ValueError as exc:
        raise ConfigError(f"resume (--resume): {described} cannot be read: {exc}") from None
    config = dataclasses.replace(load_config(run_dir / "config.toml"), out_dir=str(run_dir))
    if config.chain == "embedded":
        raise ConfigError(
            f"resume (--resume): {run_dir} ran on the embedded EVM, whose chain ended with the run; "
            "it cannot be resumed (anvil, the default chain, or --chain URL can be)"
        )
    return _execute(args, config, [], resume=True)


def _execute(args: argparse.Namespace, config: RunConfig, warnings: list[str], *, resume: bool) -> int:
    run_dir = config.run_dir
    from seccl.runs.launch import check_chain

    check_chain(config)
    for warning in warnings:
        print(f"seccl: warning: {warning}", file=sys.stderr)
    on_terminal = sys.stderr.isatty()
    show = not args.no_progress
    _say(
        f"SecCL: {config.participants} participants, {config.rounds} rounds, M={config.candidates} "
        f"(l={config.candidate_fraction:g}), s={config.share_fraction:g}, {config.dataset} ({config.split}), "
        f"{config.local_epochs} local epochs, chain {config.chain}, seed {config.seed}"
    )
    started = time.perf_counter()
    from seccl.runs.records import write_run, write_run_start

    if not resume:
        write_run_start(config, run_dir)

    def round_done(partial: Any) -> None:
        # Every round's results are on disk as it ends; run.json says incomplete until the last.
        write_run(
            config, partial, run_dir, seconds=round(time.perf_counter() - started, 3), warnings=warnings
        )

    try:
        result = _session(
            config,
            progress=show and on_terminal,
            progress_log=_progress_line if show and not on_terminal else None,
            on_round=round_done,
            resume=resume,
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
    _say(
        f"final test accuracy {result.final_accuracy:.4f} after {len(result.rounds)} rounds "
        f"in {elapsed:.1f} s"
    )
    _say(f"transactions: {len(result.transactions)}, gas {sum(t.gas for t in result.transactions):,}")
    if found:
        _say(f"EVIDENCE: {len(result.evidence)} findings (see {files['evidence']})")
        findings = Counter(
            f"round {e.round} {e.kind} found by {_who(e.finder_index, e.finder)} about "
            f"{_who(e.subject_index, e.subject)}"
            for e in result.evidence
        )
        for finding, count in findings.items():
            _say(f"  {finding}: {count}")
    else:
        _say("evidence: none — every message, ballot and model matched the chain")
    _say(f"run directory: {run_dir}  (metrics.csv, metrics.json, chain.json, evidence.json, accuracy.png)")
    if code == EXIT_EVIDENCE:
        print(
            f"seccl: exit {EXIT_EVIDENCE}: evidence was found ({len(result.evidence)} findings); "
            "--allow-evidence exits 0",
            file=sys.stderr,
        )
    return code


def _who(index: int | None, address: str) -> str:
    if index is None:
        return f"the server {address[:10]}" if address else "the server"
    return f"participant {index} ({address[:10]})"


def _session(config: RunConfig, **kwargs: Any) -> Any:
    """run_config, with a chain that fails during the run turned into a clear error."""
    from seccl.runs.checkpoint import ResumeError
    from seccl.runs.launch import chain_answers, run_config

    try:
        return run_config(config, log=_say, **kwargs)
    except ConfigError:
        raise
    except ResumeError as exc:
        raise ConfigError(f"resume (--resume): {exc}") from None
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


# ─────────────────────────────── baseline ───────────────────────────────


def _baseline(args: argparse.Namespace) -> int:
    config, _, warnings = _settings(args, BASELINE_FIELDS)
    epochs = validated(
        "epochs (--epochs)",
        DEFAULT_BASELINE_EPOCHS if args.epochs is None else args.epochs,
        Annotated[int, Field(ge=1, le=MAX_EPOCHS)],
        f"an integer from 1 to {MAX_EPOCHS}",
    )
    out = config.baseline_dir(epochs)
    check_output_dir(out)
    for warning in warnings:
        print(f"seccl: warning: {warning}", file=sys.stderr)

    import torch

    from seccl.learning.data import concat_datasets
    from seccl.learning.training import train_centralized_history
    from seccl.runs.launch import participant_data
    from seccl.runs.records import write_baseline

    torch.set_num_threads(1)
    parts, test = participant_data(config)
    union = concat_datasets([p.train for p in parts])
    _say(
        f"baseline: centralized training on the union of {config.participants} participants' "
        f"train parts ({len(union)} samples), {epochs} epochs, lr {config.learning_rate:g}, "
        f"batch {config.batch_size}"
    )
    started = time.perf_counter()
    history = train_centralized_history(
        union, test, epochs=epochs, lr=config.learning_rate, batch_size=config.batch_size, seed=config.seed
    )
    for h in history:
        _say(
            f"epoch {h.epoch:>2}/{epochs}  test accuracy {h.accuracy:.4f}  macro-F1 {h.macro_f1:.4f}  "
            f"loss {h.loss:.4f}"
        )
    files = write_baseline(
        config, epochs, history, train_samples=len(union), seconds=time.perf_counter() - started, out=out
    )
    _say(
        f"final test accuracy {history[-1].accuracy:.4f}, macro-F1 {history[-1].macro_f1:.4f}; "
        f"written to {files['baseline']} and {files['plot']}"
    )
    return 0


# ─────────────────────────────── federated (the comparison's baselines) ───────────────────────────────


def _federated(args: argparse.Namespace) -> int:
    from seccl.experiments.baselines import RESULT_NAME, run_federated, write_result

    allowed = [name for name in FIELD_NAMES if name not in ("chain", "chain_id", "workers")]
    config, given, warnings = _settings(args, allowed)
    check_given(config, given)
    out = (
        Path(config.out_dir)
        if config.out_dir
        else config.run_dir.with_name(f"{args.method}-{config.run_dir.name}")
    )
    check_output_dir(out)
    if (out / RESULT_NAME).is_file():
        _say(f"{out} already holds a finished run: nothing to do")
        return 0
    for warning in warnings:
        print(f"seccl: warning: {warning}", file=sys.stderr)
    attack = f", attack {config.attack} e={config.attack_fraction:g}" if config.attack else ""
    _say(
        f"federated ({args.method}, no chain): {config.participants} participants, {config.rounds} rounds, "
        f"s={config.share_fraction:g}, {config.dataset} ({config.split}), {config.local_epochs} local "
        f"epochs, seed {config.seed}{attack}"
    )
    record = run_federated(config, args.method, log=_say)
    path = write_result(record, out)
    _say(
        f"final test accuracy {record['final_accuracy']:.4f} in {record['seconds']:.0f} s; written to {path}"
    )
    return 0


# ─────────────────────────────── compare, verify ───────────────────────────────


def _experiment(
    name: str,
    out: Path | None,
    work: Path | None,
    jobs: int = 1,
    *,
    commit: bool = False,
    report_only: bool = False,
) -> int:
    from seccl.experiments.grid import (
        Places,
        check_records,
        experiment_path,
        load_experiment,
        run_experiment,
        write_outputs,
    )

    if jobs < 1:
        raise ConfigError(f"--jobs: need at least 1 worker, got {jobs}")
    experiment = load_experiment(experiment_path(name))
    results = out or Path("runs") / "experiments" / experiment.name
    places = Places(results=results, work=work or results)
    where = f"{results}" + (f" (runs in {places.work})" if places.work != results else "")
    _say(f"experiment {experiment.name}: {experiment.title}; {len(experiment.runs)} runs into {where}")
    places.work.mkdir(parents=True, exist_ok=True)
    if report_only:
        check_records(experiment, places)  # run_experiment checks them before its first run
        write_outputs(experiment, places, _say, commit=commit)
        _say(f"results: {results / 'results.md'}, {results / 'results.csv'}")
        return 0
    helper_argv = ["--out", str(results), "--work", str(places.work), *(["--commit"] if commit else [])]
    with _helper_workers(name, places.work, jobs - 1, helper_argv) as helpers:
        run_experiment(experiment, places, lambda argv: _main(argv), say=_say, commit=commit)
        failed = [f"worker-{i}.log" for i, worker in enumerate(helpers, 1) if worker.wait() != 0]
    if failed:  # their runs are not lost: finished ones are kept, cut ones resume on the next call
        _say(f"experiment {experiment.name}: a worker failed; see {', '.join(failed)} in {places.work}")
        return 1
    if jobs > 1:  # the helpers may have finished the last runs after this worker's last report
        write_outputs(experiment, places, _say, commit=commit)
    _say(f"results: {results / 'results.md'}, {results / 'results.csv'}")
    return 0


@contextlib.contextmanager
def _helper_workers(
    name: str, directory: Path, count: int, options: list[str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` more `seccl experiment NAME OPTIONS` processes, each logging to
    ``worker-I.log`` in ``directory``; stopped (SIGTERM, so their runs stop where they can resume)
    if this one is interrupted or fails, and killed with it if it is killed (PR_SET_PDEATHSIG)."""
    from seccl.chain.anvil import die_with_parent

    workers: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(1, count + 1):
            with open(directory / f"worker-{i}.log", "ab") as log:
                argv = [sys.executable, "-m", "seccl.cli.main", "experiment", name]
                workers.append(
                    subprocess.Popen(
                        [*argv, *options],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        preexec_fn=die_with_parent,
                    )
                )
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            worker.wait()


def _compare(runs: list[Path], out: Path | None) -> int:
    from seccl.runs.compare import CompareError, compare_runs, default_out

    try:
        target = out or default_out(runs)
        check_output_dir(target, "--out")
        files, table = compare_runs(runs, target)
    except CompareError as exc:
        raise ConfigError(f"compare: {exc}") from None
    print(table, end="")
    _say(f"written to {files['plot']} and {files['table']}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from seccl.cli.deploy import CommandError, run_command

    try:
        return run_command(args)
    except CommandError as exc:
        raise ConfigError(str(exc)) from None


def _audit(path: Path, url: str | None) -> int:
    """Print the per-round audit and a one-line verdict; exit 1 on any discrepancy."""
    from seccl.runs.audit import audit_run
    from seccl.runs.verify import VerifyError

    try:
        report = audit_run(path, url=url)
    except (VerifyError, ChainError) as exc:
        print(f"seccl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _verify_evidence(path: Path, url: str | None) -> int:
    """Print each finding's verdict; exit 1 if any finding is refuted (fabricated or false)."""
    from seccl.runs.verify import VerifyError, verify_run

    try:
        checked = verify_run(path, url=url)
    except (VerifyError, ChainError) as exc:
        print(f"seccl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    counts = Counter(str(verdict.status) for _, verdict in checked)
    for evidence, verdict in checked:
        print(f"{verdict.status.upper():<10} {evidence.summary()}\n           {verdict.reason}")
    print(
        f"{len(checked)} findings: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        if checked
        else "no findings to verify"
    )
    return 1 if counts.get("refuted") else 0


if __name__ == "__main__":
    raise SystemExit(main())
