"""`seccl verify-evidence` and `seccl audit`: a run re-checked against its chain, trusting neither side."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from seccl.chain.errors import ChainError
from seccl.cli.common import EXIT_USAGE
from seccl.cli.options import Formatter


def add_parsers(sub: Any) -> None:
    for name, what, path_help, handler in (
        (
            "verify-evidence",
            "confirm or refute each finding of a run from the chain, trusting neither side",
            "a run directory, or its evidence.json",
            verify_evidence,
        ),
        (
            "audit",
            "re-verify a run from its chain and stored messages alone, trusting neither side",
            "a run directory",
            audit,
        ),
    ):
        checker = sub.add_parser(name, help=what, formatter_class=Formatter)
        checker.add_argument("path", type=Path, help=path_help)
        checker.add_argument(
            "--chain",
            dest="chain_url",
            help="a JSON-RPC URL of a node holding the run's chain "
            "(default: the run's persisted anvil state)",
        )
        checker.set_defaults(handler=handler)


def audit(args: argparse.Namespace) -> int:
    """Print the per-round audit and a one-line verdict; exit 1 on any discrepancy."""
    from seccl.runs.audit import audit_run
    from seccl.runs.verify import VerifyError

    try:
        report = audit_run(args.path, url=args.chain_url)
    except (VerifyError, ChainError) as exc:
        print(f"seccl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def verify_evidence(args: argparse.Namespace) -> int:
    """Print each finding's verdict; exit 1 if any finding is refuted (fabricated or false)."""
    from seccl.runs.verify import VerifyError, verify_run

    try:
        checked = verify_run(args.path, url=args.chain_url)
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
