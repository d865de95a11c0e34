"""What the command modules share: the exit codes, a line of output, warnings, the set-up commands' errors."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Iterable

from seccl.runs.config import ConfigError

EXIT_EVIDENCE = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

Handler = Callable[[argparse.Namespace], int]


def say(line: str) -> None:
    print(line, flush=True)


def warn(warnings: Iterable[str]) -> None:
    for warning in warnings:
        print(f"seccl: warning: {warning}", file=sys.stderr)


def positive(value: int, flag: str) -> int:
    if value < 1:
        raise ConfigError(f"{flag}: got {value}; allowed: 1 or more")
    return value


def setup_command(handler: Handler) -> Handler:
    """``handler`` of a set-up or deployment command (`seccl keys new`, …), with what the user
    must fix (a missing file, a node that refuses, a bad session file) turned into one line
    `seccl: COMMAND ACTION: ...`, exit 2."""

    @functools.wraps(handler)
    def command(args: argparse.Namespace) -> int:
        # Imported when a command runs, not when the parser is built: `seccl --help` needs none of them.
        from seccl.chain.accounts import KeystoreError
        from seccl.chain.errors import ChainError
        from seccl.deploy.data_files import DataFileError
        from seccl.deploy.local import DeployError
        from seccl.deploy.node import NodeConfigError
        from seccl.deploy.session_file import SessionFileError
        from seccl.deploy.verify import NodeVerifyError

        try:
            return handler(args)
        except (
            OSError,
            ChainError,
            KeystoreError,
            DataFileError,
            DeployError,
            NodeConfigError,
            SessionFileError,
            NodeVerifyError,
            FileExistsError,
        ) as exc:
            raise ConfigError(f"{args.command} {args.action}: {exc}") from None

    return command
