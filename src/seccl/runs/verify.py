"""`seccl verify-evidence`: re-checks a run's findings from the chain alone, trusting neither side.

The verifier reads the session (server, roster, nonce, contracts) from the chain over its own
connection; from the run's files it takes only the board's address, the agreed decoding bounds and
the findings with their signed proofs. A fabricated finding is refuted, a real one confirmed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seccl.chain.anvil import AnvilNode
from seccl.chain.backends import ChainBackend, RpcChain
from seccl.chain.bulletin_board import BulletinBoardClient
from seccl.chain.consensus import ElectionClient
from seccl.chain.session import SessionMismatchError, code_matches, consensus_client_at
from seccl.deploy.verify import findings_from
from seccl.protocol.evidence import Evidence
from seccl.protocol.json_input import MAX_RECORD_DEPTH, parse_json
from seccl.protocol.session import SessionInfo, session_from_chain
from seccl.protocol.verification import Verdict, verify_evidence


class VerifyError(Exception):
    """The findings cannot be checked: a missing file, or no chain to check them against."""


@dataclass(frozen=True)
class RunFiles:
    """Where a run's findings and chain facts are, and the run directory (for its anvil state)."""

    evidence: Path
    chain: Path

    @classmethod
    def locate(cls, path: Path) -> RunFiles:
        """``path`` is a run directory or its ``evidence.json``; ``chain.json`` lies beside it.

        A file that is not an evidence file is said to be so, before ``chain.json`` is looked for."""
        evidence = path / "evidence.json" if path.is_dir() else path
        chain = evidence.parent / "chain.json"
        if not evidence.is_file():
            raise VerifyError(f"{evidence} does not exist: give a run directory or its evidence.json")
        if not chain.is_file():
            load_findings(evidence)  # a file that is not an evidence file at all: say that first
            raise VerifyError(
                f"{chain} does not exist: {evidence} must lie in its run directory, beside chain.json"
            )
        return cls(evidence, chain)


def load_findings(path: Path) -> list[Evidence]:
    """The findings of a run's evidence.json; a :class:`VerifyError` naming what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VerifyError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        raw = parse_json(data, max_depth=MAX_RECORD_DEPTH)
        if not isinstance(raw, dict) or "evidence" not in raw:
            raise ValueError('it is not a JSON object with an "evidence" list')
        return findings_from(raw["evidence"])
    except json.JSONDecodeError as exc:
        raise VerifyError(f"{path} is not a SecCL evidence file: not JSON ({exc})") from None
    except (ValueError, TypeError) as exc:
        raise VerifyError(f"{path} is not a SecCL evidence file: {exc}") from None


@contextlib.contextmanager
def open_run_chain(files: RunFiles, facts: dict[str, Any], url: str | None) -> Iterator[ChainBackend]:
    """The chain the run used: ``url`` if given; else the run's persisted anvil state, reopened
    from a copy (so checking a run never changes its record)."""
    if url:
        yield RpcChain(url)
        return
    state = files.chain.parent / "anvil-state.json"
    if not state.is_file():
        backend = facts.get("backend", "?")
        raise VerifyError(
            f"the run's chain ({backend}) was not persisted: the embedded EVM ends with its run. "
            "Give --chain URL for a node that holds it, or re-run with --chain anvil."
        )
    pinned = facts.get("state_file_sha256")
    if pinned and hashlib.sha256(state.read_bytes()).hexdigest() != pinned:
        raise VerifyError(f"{state} was changed after the run: its SHA-256 is not the one chain.json pins")
    with tempfile.TemporaryDirectory(prefix="seccl-verify-") as scratch:
        copy = Path(scratch) / state.name
        shutil.copyfile(state, copy)
        with AnvilNode(copy, save_on_stop=False) as node:
            yield node.backend()


@dataclass(frozen=True)
class RunChain:
    """A run's session as the chain records it, through the verifier's own read-only clients."""

    session: SessionInfo
    board: BulletinBoardClient
    consensus: ElectionClient
    aggregation: str


@contextlib.contextmanager
def open_session(files: RunFiles, url: str | None) -> Iterator[RunChain]:
    """Reopen the run's chain and read its session from the contracts themselves, after checking
    that both run the committed code and belong together."""
    facts = json.loads(files.chain.read_text())
    with open_run_chain(files, facts, url) as backend:
        w3 = backend.connect()
        board = BulletinBoardClient(w3, facts["bulletin_board"])
        if not code_matches(w3, board.address, "BulletinBoard"):
            raise VerifyError(f"the code at {board.address} on this chain is not the committed BulletinBoard")
        # The consensus contract is the one the board names, not the one the run's files name.
        try:  # the one the board names, running the committed Consensus or GramGateConsensus
            consensus = consensus_client_at(w3, board.consensus())
        except SessionMismatchError as exc:
            raise VerifyError(f"the board's consensus contract is not a committed one: {exc}") from None
        if consensus.board() != board.address:
            raise VerifyError(f"the board's consensus contract {consensus.address} is not the committed one")
        # The code is compared with its immutables masked: their values must match the board's.
        copied = (consensus.nonce(), consensus.participant_count())
        if copied != (board.nonce(), len(board.participants())):
            raise VerifyError(f"the consensus contract {consensus.address} differs from the board")
        session = session_from_chain(board, consensus)
        yield RunChain(session, board, consensus, str(facts["aggregation"]))


def check_findings(findings: list[Evidence], chain: RunChain) -> list[tuple[Evidence, Verdict]]:
    return [
        (e, verify_evidence(e, chain.session, chain.board, chain.consensus, aggregation=chain.aggregation))
        for e in findings
    ]


def verify_run(path: Path, *, url: str | None = None) -> list[tuple[Evidence, Verdict]]:
    """Every finding of the run at ``path`` with the verdict the chain gives it."""
    files = RunFiles.locate(path)
    findings = load_findings(files.evidence)
    with open_session(files, url) as chain:
        return check_findings(findings, chain)
