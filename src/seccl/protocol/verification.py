"""Checks a finding with no trust in either side: the server's signatures and the chain decide.

A finding is CONFIRMED when the server's own signed statement, or the chain alone, proves its
subject wrong (the server, or a participant whose committed update is invalid or was never
revealed); REFUTED when the signature is not the server's or the chain contradicts the finding (a
fabricated accusation); UNPROVABLE when it rests on the finder's word (silence leaves no
signature), in which case the contracts are what kept the harm away.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.consensus import ElectionClient
from seccl.learning.aggregation import aggregate
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.errors import ProtocolError
from seccl.protocol.evidence import Evidence, EvidenceKind
from seccl.protocol.messages import ModelMessage, UpdateMessage, decode_message, header_author
from seccl.protocol.session import SessionInfo
from seccl.protocol.statements import Delivery, Receipt


class Status(StrEnum):
    CONFIRMED = "confirmed"
    REFUTED = "refuted"
    UNPROVABLE = "unprovable"


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str


def _confirmed(reason: str) -> Verdict:
    return Verdict(Status.CONFIRMED, reason)


def _refuted(reason: str) -> Verdict:
    return Verdict(Status.REFUTED, reason)


def verify_evidence(
    evidence: Evidence,
    session: SessionInfo,
    board: BulletinBoardClient,
    consensus: ElectionClient,
    *,
    aggregation: str,
) -> Verdict:
    """The verdict on ``evidence`` from the chain (through read-only ``board`` and ``consensus``
    clients on the verifier's own connection) and the session's agreed facts."""
    try:
        return _verify(evidence, session, board, consensus, aggregation)
    except (KeyError, ValueError, TypeError) as exc:
        return _refuted(f"the proof is malformed: {type(exc).__name__}: {exc}")


def _verify(
    e: Evidence,
    session: SessionInfo,
    board: BulletinBoardClient,
    consensus: ElectionClient,
    aggregation: str,
) -> Verdict:
    kind = e.kind
    if kind is EvidenceKind.MODEL_MISMATCH:
        delivery = Delivery.from_dict(e.proof["delivery"])
        if delivery.signer(session.domain) != session.server:
            return _refuted("the delivery statement is not signed by the session's server")
        position = int(e.proof["position"])
        author, delivered = delivery.authors[position], delivery.digests[position]
        recorded = board.digest_of(delivery.round, delivery.kind, author)
        if delivery.kind is not MessageKind.MODEL or recorded is None:
            return _refuted("the board records no model to compare the delivery with (yet)")
        if recorded == delivered:
            return _refuted("the board records exactly the digest the server delivered")
        return _confirmed(
            f"the server signed for digest 0x{delivered.hex()} as the model of round {delivery.round}; "
            f"the board records 0x{recorded.hex()}"
        )
    if kind is EvidenceKind.UPDATE_NOT_REVEALED:
        if e.subject not in session.participants:
            return _refuted("the subject is not a participant")
        index = session.participants.index(e.subject)
        info = board.round_info(e.round)
        closed = info.model_posted or (info.opened_at and _now(board) > info.reveal_deadline)
        if not info.has_update(index) or info.has_revealed(index) or not closed:
            return _refuted("the board shows no commitment of that author left unrevealed past the deadline")
        return _confirmed(f"{e.subject} committed an update of round {e.round} and never revealed it")
    if kind in (EvidenceKind.UPDATE_NOT_RECORDED, EvidenceKind.BALLOT_NOT_COUNTED):
        receipt = Receipt.from_dict(e.proof["receipt"])
        if receipt.signer(session.domain) != session.server:
            return _refuted("the receipt is not signed by the session's server")
        if kind is EvidenceKind.UPDATE_NOT_RECORDED:
            record = board.record_in_transaction(receipt.tx_id) if receipt.tx_id else None
            holds = record is not None and (record.round, record.kind, record.author, record.digest) == (
                receipt.round,
                MessageKind.UPDATE,
                receipt.author,
                receipt.digest,
            )
        else:
            ballot = consensus.ballot_in_transaction(receipt.tx_id) if receipt.tx_id else None
            holds = ballot is not None and (ballot.round, ballot.voter, ballot.digest) == (
                receipt.round,
                receipt.author,
                receipt.digest,
            )
        if holds:
            return _refuted(f"transaction {receipt.tx_id} records exactly what the receipt says")
        return _confirmed(
            f"the server signed a receipt citing {receipt.tx_id or 'no transaction'}, "
            "which does not record it"
        )
    if kind is EvidenceKind.MODEL_NOT_AGGREGATED:
        return _verify_aggregation(e, session, board, consensus, aggregation)
    if kind is EvidenceKind.MODEL_NOT_POSTED:
        info = board.round_info(e.round)
        if info.opened_at and not info.model_posted and _now(board) > info.model_deadline:
            return _confirmed(
                f"round {e.round} has no model on the board past its deadline {info.model_deadline}"
            )
        return _refuted("the model was posted, or its deadline has not passed")
    if kind is EvidenceKind.INVALID_MESSAGE:
        signed = SignedMessage.from_dict(e.proof["message"])
        if board.digest_of(e.round, MessageKind.UPDATE, e.subject) != signed.digest():
            return _refuted("the bytes are not the update the board records for that author")
        try:
            decode_message(signed.data, **session.bounds())
        except ProtocolError as exc:
            return _confirmed(f"the author's committed update is invalid ({type(exc).__name__})")
        return _refuted("the recorded update decodes within the session's bounds")
    return Verdict(
        Status.UNPROVABLE, "this finding rests on the finder's word; the chain shows what it did about it"
    )


def _verify_aggregation(
    e: Evidence,
    session: SessionInfo,
    board: BulletinBoardClient,
    consensus: ElectionClient,
    aggregation: str,
) -> Verdict:
    r = e.round
    previous = SignedMessage.from_dict(e.proof["previous_model"])
    if board.digest_of(r - 1, MessageKind.MODEL, session.server) != previous.digest():
        return _refuted(f"the previous model in the proof is not the one the board records for round {r - 1}")
    before = decode_message(previous.data, dimension=session.dimension)
    assert isinstance(before, ModelMessage)
    candidates = consensus.elected_of(r)
    authors, updates = [], []
    for raw in e.proof["updates"]:
        signed = SignedMessage.from_dict(raw)
        author = header_author(signed.data)
        if author is None or board.digest_of(r, MessageKind.UPDATE, author) != signed.digest():
            return _refuted(f"the proof's update of {author} is not the one the board records")
        authors.append(session.participants.index(author))
        try:
            message = decode_message(signed.data, **session.bounds())
        except ProtocolError:
            continue  # an elected update that breaks the bounds is left out by every party alike
        if isinstance(message, UpdateMessage) and (message.round, message.author) == (r, author):
            updates.append(message.update)
    if sorted(authors) != sorted(candidates):
        return _refuted("the proof's updates are not exactly the elected candidates'")
    expected = ModelMessage(r, session.server, aggregate(before.params, updates, rule=aggregation))
    recorded = board.digest_of(r, MessageKind.MODEL, session.server)
    if recorded == expected.digest():
        return _refuted("the recorded model is exactly the aggregate of the candidates' updates")
    return _confirmed(
        f"the aggregate of the elected candidates' recorded updates hashes to 0x{expected.digest().hex()}; "
        f"the board records {'nothing' if recorded is None else '0x' + recorded.hex()}"
    )


def _now(board: BulletinBoardClient) -> int:
    return int(board.w3.eth.get_block("latest")["timestamp"])
