"""Checking a deployed participant's findings as a third party: from the session file (only for
the contracts' address and the decoding bounds) and the chain itself, trusting neither the
participant nor the server."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seccl.chain.anvil import AnvilNode
from seccl.chain.backends import ChainBackend, RpcChain
from seccl.chain.bulletin_board import BulletinBoardClient
from seccl.chain.session import SessionMismatchError, code_matches, consensus_client_at
from seccl.deploy.session_file import SessionFile
from seccl.protocol.evidence import Evidence
from seccl.protocol.json_input import MAX_RECORD_DEPTH, parse_json
from seccl.protocol.session import session_from_chain
from seccl.protocol.verification import Verdict, verify_evidence


class NodeVerifyError(ValueError):
    """The findings or the chain cannot be checked (what is wrong is said)."""


def findings_from(items: Any) -> list[Evidence]:
    """The findings of a list of evidence objects as evidence.json holds them; a ValueError that
    names the finding and what is wrong with it (the field it lacks, the value it cannot hold)."""
    if not isinstance(items, list):
        raise ValueError(f"its findings are not a list but {type(items).__name__}")
    findings = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"finding {i} is not an object but {type(item).__name__}")
        try:
            findings.append(Evidence.from_dict(item))
        except KeyError as exc:
            raise ValueError(f"finding {i} lacks the field {exc.args[0]!r}") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"finding {i} holds a wrong value ({type(exc).__name__}: {exc})") from None
    return findings


@contextlib.contextmanager
def open_chain(url: str | None, state_file: Path | None) -> Iterator[ChainBackend]:
    """A node holding the session's chain: ``url``, or an anvil reopened from a copy of
    ``state_file`` (a finished `seccl deploy local` saves its chain there)."""
    if url:
        yield RpcChain(url)
        return
    if state_file is None or not Path(state_file).is_file():
        raise NodeVerifyError(f"no chain to check against: give --chain URL, or a saved state ({state_file})")
    with tempfile.TemporaryDirectory(prefix="seccl-verify-") as scratch:
        copy = Path(scratch) / "anvil-state.json"
        shutil.copyfile(state_file, copy)
        with AnvilNode(copy, save_on_stop=False) as node:
            yield node.backend()


def verify_node_evidence(
    evidence_file: Path, agreed: SessionFile, backend: ChainBackend
) -> list[tuple[Evidence, Verdict]]:
    """Every finding in a participant's ``evidence.json`` with the verdict the chain gives it."""
    try:
        data = Path(evidence_file).read_bytes()
    except OSError as exc:
        raise NodeVerifyError(
            f"evidence file {evidence_file}: cannot read it: {exc.strerror or exc}"
        ) from None
    try:
        findings = findings_from(parse_json(data, max_depth=MAX_RECORD_DEPTH))
    except (ValueError, TypeError) as exc:
        raise NodeVerifyError(f"{evidence_file} is not a participant's evidence file: {exc}") from None
    w3 = backend.connect()
    board = BulletinBoardClient(w3, agreed.session.board)
    if not code_matches(w3, board.address, "BulletinBoard"):
        raise NodeVerifyError(f"the code at {board.address} is not the committed BulletinBoard")
    try:  # the one the board names, running the committed Consensus or GramGateConsensus
        consensus = consensus_client_at(w3, board.consensus())
    except SessionMismatchError as exc:
        raise NodeVerifyError(f"the board's consensus contract is not a committed one: {exc}") from None
    if consensus.board() != board.address:
        raise NodeVerifyError(f"the board's consensus contract {consensus.address} is not the committed one")
    session = session_from_chain(board, consensus)
    aggregation = agreed.settings.aggregation
    return [(e, verify_evidence(e, session, board, consensus, aggregation=aggregation)) for e in findings]
