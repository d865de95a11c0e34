"""The `seccl` command: `seccl run` (a SecCL session), `seccl baseline` (centralized training),
`seccl compare` (runs side by side) and `seccl verify-evidence` (a run's findings re-checked
against the chain).

Every setting is checked before any data loads or any process starts. A bad input exits 2 with
one line `seccl: <setting>: <what is wrong; what is allowed>` on stderr, never a traceback.
`seccl run` exits 1 when evidence was found (unless --allow-evidence), 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from seccl.cli import audit, baselines, compare, data, deploy, evaluate, experiment, keys, node, run, session
from seccl.cli.common import EXIT_INTERNAL, EXIT_USAGE
from seccl.cli.options import RawFormatter
from seccl.runs.config import ConfigError


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


def build_parser() -> argparse.ArgumentParser:
    """The `seccl` parser: each command's parser sets ``handler``, the function that runs it."""
    parser = _Parser(prog="seccl", description=__doc__, formatter_class=RawFormatter)
    parser.add_argument("--version", action="version", version=f"seccl {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In the order `seccl --help` lists them.
    run.add_parser(sub)
    baselines.add_parsers(sub)
    compare.add_parser(sub)
    evaluate.add_parser(sub)
    experiment.add_parser(sub, run_argv=_main)  # an experiment's runs run in this process
    audit.add_parsers(sub)
    for group in (keys, session, data, node, deploy):
        group.add_parser(sub)
    return parser


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
        code: int = args.handler(args)
        return code
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


if __name__ == "__main__":
    raise SystemExit(main())
