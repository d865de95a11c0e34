"""What the command modules share: the exit codes, a line of output, warnings, the set-up commands' errors."""

from __future__ import annotations

import argparse
import errno
import functools
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from seccl.runs.config import ConfigError

if TYPE_CHECKING:
    from seccl.roles.settings import LearningSettings

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


def file_error(exc: OSError) -> str:
    """An OSError as `FILE: REASON`, not Python's `[Errno N] REASON: 'FILE'`."""
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EEXIST and names:
        reason += " (a file or directory of that name is in the way)"
    return f"{' → '.join(names)}: {reason}" if names else reason


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
        from seccl.deploy.setup import SetupError
        from seccl.deploy.verify import NodeVerifyError

        try:
            return handler(args)
        except OSError as exc:
            # Reached only by a file error no step words itself: say which file, and why.
            raise ConfigError(f"{args.command} {args.action}: {file_error(exc)}") from None
        except (
            ChainError,
            KeystoreError,
            DataFileError,
            DeployError,
            NodeConfigError,
            SessionFileError,
            NodeVerifyError,
            SetupError,
        ) as exc:
            raise ConfigError(f"{args.command} {args.action}: {exc}") from None

    return command


def election_settings(local_epochs: int, election: str) -> LearningSettings:
    """The learning settings of a deployed session: its local epochs and election rule (gram-gate
    implies its own aggregation, clipped-shared-mean)."""
    from seccl.roles.settings import LearningSettings

    aggregation = "clipped-shared-mean" if election == "gram-gate" else "shared-mean"
    return LearningSettings(local_epochs=local_epochs, election=election, aggregation=aggregation)
