"""The facts a run's result states, read from the chain and the parties: who took part, what each
round's election counted, and what pins the chain instance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient
from seccl.chain.consensus import ConsensusClient, ElectionClient
from seccl.chain.transactions import TxReceipt
from seccl.election import MAX_SCORE
from seccl.learning.data import Dataset
from seccl.protocol.session import SessionInfo
from seccl.roles.participant import Participant

ScoreMatrix = tuple[tuple[int | None, ...] | None, ...]


def election_facts(
    session: SessionInfo, consensus: ElectionClient, r: int
) -> tuple[ScoreMatrix, tuple[int, ...], tuple[int, ...]]:
    """Round ``r``'s counted ballots as a score matrix (row = voter; None = abstained, or no
    ballot counted; DROPPED and REJECTED marks too), and the contract's Borda points and
    abstentions (none for a gram-gate election), read from the chain."""
    index = {a.lower(): i for i, a in enumerate(session.participants)}
    rows: list[tuple[int | None, ...] | None] = [None] * session.n
    for ballot in consensus.ballots_of(r):
        rows[index[ballot.voter.lower()]] = tuple(None if s > MAX_SCORE else s for s in ballot.scores)
    if not isinstance(consensus, ConsensusClient):
        return tuple(rows), (), ()  # a gram-gate count keeps no running totals
    points, abstentions = consensus.totals_of(r)
    return tuple(rows), points, abstentions


def participant_facts(participants: Sequence[Participant], adversaries: set[int]) -> list[dict[str, Any]]:
    """Who is who: each participant's address, whether it is an adversary, its data."""
    return [
        {
            "index": p.index,
            "address": p.address,
            "adversary": p.index in adversaries,
            "train_samples": len(p.data.train),
            "validation_samples": len(p.data.validation),
            "train_class_counts": [int(c) for c in p.data.train.class_counts()],
            "validation_class_counts": [int(c) for c in p.data.validation.class_counts()],
            "train_sha256": p.data.train.sha256(),
            "validation_sha256": p.data.validation.sha256(),
        }
        for p in participants
    ]


def chain_facts(
    *,
    backend: ChainBackend,
    session: SessionInfo,
    board: BulletinBoardClient,
    aggregation: str,
    deployment: Sequence[TxReceipt],
    funding: Sequence[TxReceipt],
    test_set: Dataset,
    last_block: int | None = None,
) -> dict[str, Any]:
    """What chain.json states about the session and the chain instance. ``last_block``: the last
    block the record accounts for (default: the chain's head now); a deployment's chain moves on
    its own, so its server pins the last block its ledger read."""
    w3 = board.w3
    last, last_hash = (int(w3.eth.block_number), "latest") if last_block is None else (last_block, last_block)
    return {
        "backend": backend.name,
        "chain_id": session.chain_id,
        "bulletin_board": session.board,
        "consensus": session.consensus,
        "server": session.server,
        "participants": list(session.participants),
        "candidates_per_round": session.candidates,
        "nonce": "0x" + session.nonce.hex(),
        "phases": asdict(session.phases),
        "url": getattr(backend, "url", None),
        "dimension": session.dimension,
        "initial_model": "0x" + session.initial_model.hex(),
        "aggregation": aggregation,
        "update_size": session.update_size,
        "max_abs_value": session.max_abs_value,
        "deployment": [r.tx_hash for r in deployment],
        "funding": [r.tx_hash for r in funding],
        "accusations_upheld": board.caught_count() if last_block is None else _upheld_by(board, last),
        # What pins this chain instance: contracts land at the same addresses, with the same
        # chain id, in every session with the same server key; the block hashes do not repeat.
        "genesis_hash": _block_hash(board, 0),
        "deployment_blocks": [r.block_number for r in deployment],
        "last_block": {"number": last, "hash": _block_hash(board, last_hash)},
        "test_set_sha256": test_set.sha256(),
    }


def _block_hash(board: BulletinBoardClient, block: int | str) -> str:
    return "0x" + bytes(board.w3.eth.get_block(block)["hash"]).hex()  # type: ignore[arg-type]


def _upheld_by(board: BulletinBoardClient, last: int) -> int:
    """How many accusations the board had upheld by block ``last``."""
    receipts = [board.w3.eth.get_transaction_receipt(tx) for *_, tx in board.accusations()]  # type: ignore[arg-type]
    return sum(int(r["blockNumber"]) <= last for r in receipts)
