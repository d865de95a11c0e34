"""`seccl verify-evidence` and `seccl audit`: a run re-checked against its chain, trusting neither side."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from seccl.chain.errors import ChainError
from seccl.cli.common import EXIT_USAGE
from seccl.cli.options import Formatter, RawFormatter

AUDIT_DESCRIPTION = """\
Re-verify a run's records from the chain, trusting none of them: a run directory (`seccl run`),
a deployment's server records (DEPLOYMENT/server/records) or a participant's state directory
(DEPLOYMENT/participant-NNNN/state). Every stored message, ballot, election and model is checked
against the chain, then every record: chain.json's session, transactions (block, sender, status,
gas) and block hashes against the chain's own blocks and receipts; metrics.json (elections in
order, scores, Borda points, abstentions, gas, the accuracy recomputed from the model files when
the test set is at hand) against the consensus contract; evidence.json (each finding re-judged,
its recorded verdict compared, no finding the participants recorded or the chain upheld left out).

The last line is the verdict: `clean`; `consistent, with N confirmed findings against the
server` (a correct record of a server that was caught); `incomplete (K of R rounds)`; or
`inconsistent (...)`, naming what disagrees.

Exit codes: 0 clean, consistent (with confirmed findings too: the record is correct, and the
last line says whom the findings are against) or incomplete; 1 inconsistent; 2 the input cannot
be audited (a missing or unreadable file, no chain to check against), one line on stderr."""


def add_parsers(sub: Any) -> None:
    checker = sub.add_parser(
        "verify-evidence",
        help="confirm or refute each finding of a run from the chain, trusting neither side",
        formatter_class=Formatter,
    )
    checker.add_argument("path", type=Path, help="a run directory, or its evidence.json")
    checker.add_argument(
        "--chain",
        dest="chain_url",
        help="a JSON-RPC URL of a node holding the run's chain (default: the run's persisted anvil state)",
    )
    checker.set_defaults(handler=verify_evidence)

    auditor = sub.add_parser(
        "audit",
        help="re-verify a run's records from the chain: clean, consistent, incomplete or inconsistent",
        description=AUDIT_DESCRIPTION,
        formatter_class=RawFormatter,
    )
    auditor.add_argument(
        "path",
        type=Path,
        help="a run directory, a deployment's server/records, or a participant's state directory",
    )
    auditor.add_argument(
        "--chain",
        dest="chain_url",
        help="a JSON-RPC URL of a node holding the chain (default: the run's pinned anvil-state.json; "
        "for a deployment, the anvil state `seccl deploy local` saved in DEPLOYMENT/chain/)",
    )
    auditor.add_argument(
        "--session",
        dest="session_file",
        type=Path,
        help="a deployment's session.json (default: the one the server's run.json names, or "
        "DEPLOYMENT/session.json two levels up)",
    )
    auditor.set_defaults(handler=audit)


def audit(args: argparse.Namespace) -> int:
    """Print the audit and its verdict; exit 1 when the records are inconsistent, 2 when they
    cannot be audited."""
    from seccl.runs.audit import AuditInputError, audit_path

    try:
        report = audit_path(args.path, url=args.chain_url, session_file=args.session_file)
    except (AuditInputError, ChainError) as exc:
        print(f"seccl: audit: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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
