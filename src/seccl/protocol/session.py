"""What every party of one session agrees on: the addresses, the roster, the decoding bounds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind, Phases, UpdateFormat
from seccl.chain.consensus import ElectionClient
from seccl.chain.gram_gate_consensus import GramGateConsensusClient
from seccl.chain.session import SessionTerms
from seccl.chain.signing import SigningDomain
from seccl.protocol.messages import HEADER_SIZE, SALT_BYTES, SCORE_BYTES


@dataclass(frozen=True)
class SessionInfo:
    """Public facts of a session, the same for every party: what each participant agreed to and
    checks against the chain before it takes part (see :func:`seccl.chain.session.verify_session`).

    ``update_size`` is the exact number of coordinates every update carries (⌈s·d⌉) and
    ``max_abs_value`` the largest magnitude an update value may have; a message outside either is
    refused at decoding, and the board records both (with ``dimension``) as the update format.
    """

    chain_id: int
    board: str
    consensus: str
    server: str
    participants: tuple[str, ...]
    dimension: int
    candidates: int
    nonce: bytes
    phases: Phases
    update_size: int
    max_abs_value: float
    initial_model: bytes
    election: str = "borda"
    assumed_attackers: int = 0

    @property
    def domain(self) -> SigningDomain:
        return SigningDomain(self.chain_id, self.board, self.consensus, self.nonce)

    @property
    def n(self) -> int:
        return len(self.participants)

    @property
    def update_format(self) -> UpdateFormat:
        return UpdateFormat(self.dimension, self.update_size, self.max_abs_value)

    @property
    def terms(self) -> SessionTerms:
        return SessionTerms(
            self.server,
            self.participants,
            self.candidates,
            self.nonce,
            self.phases,
            self.initial_model,
            self.update_format,
            election=self.election,
            assumed_attackers=self.assumed_attackers,
        )

    def bounds(self) -> dict[str, Any]:
        """The decoding bounds of this session, as keyword arguments of ``decode_message``."""
        return {
            "dimension": self.dimension,
            "participants": self.n,
            "update_size": self.update_size,
            "max_abs_value": self.max_abs_value,
            "max_bytes": self.max_message_bytes,
        }

    @property
    def max_message_bytes(self) -> int:
        """The largest message this session can produce (a model, or an evaluation at large N):
        anything longer is refused before it is parsed or hashed."""
        model = HEADER_SIZE + 4 + 4 * self.dimension
        update = HEADER_SIZE + SALT_BYTES + 8 + 8 * self.update_size
        evaluation = HEADER_SIZE + SCORE_BYTES * self.n
        return max(model, update, evaluation)


def session_from_chain(board: BulletinBoardClient, consensus: ElectionClient) -> SessionInfo:
    """The session as the chain itself records it, read through the caller's own connection:
    server, roster, nonce, phases, update format, M and θ_0's digest all come from the
    contracts, so an outside verifier trusts neither side's records."""
    server = board.server()
    initial = board.digest_of(0, MessageKind.MODEL, server)
    update_format = board.update_format()
    return SessionInfo(
        chain_id=int(board.w3.eth.chain_id),
        board=board.address,
        consensus=consensus.address,
        server=server,
        participants=tuple(board.participants()),
        dimension=update_format.dimension,
        candidates=consensus.candidate_count(),
        nonce=board.nonce(),
        phases=board.phases(),
        update_size=update_format.update_size,
        max_abs_value=update_format.max_abs_value,
        initial_model=initial or b"\x00" * 32,
        election=consensus.rule,
        assumed_attackers=consensus.assumed_attackers()
        if isinstance(consensus, GramGateConsensusClient)
        else 0,
    )


def session_to_dict(session: SessionInfo) -> dict[str, Any]:
    """``session`` as JSON-ready values (bytes as 0x-hex), as checkpoints and session files hold it."""
    raw = asdict(session)
    for key in ("nonce", "initial_model"):
        raw[key] = "0x" + bytes(raw[key]).hex()
    raw["participants"] = list(session.participants)
    return raw


def session_from_dict(raw: dict[str, Any]) -> SessionInfo:
    """The inverse of :func:`session_to_dict`."""
    fields = dict(raw)
    for key in ("nonce", "initial_model"):
        fields[key] = bytes.fromhex(str(fields[key]).removeprefix("0x"))
    fields["participants"] = tuple(fields["participants"])
    fields["phases"] = Phases(**fields["phases"])
    return SessionInfo(**fields)
