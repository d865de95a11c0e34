"""What every party of one session agrees on: the addresses, the roster, the decoding bounds."""

from __future__ import annotations

from dataclasses import dataclass

from seccl.chain.bulletin_board import Phases
from seccl.chain.session import SessionTerms
from seccl.chain.signing import SigningDomain


@dataclass(frozen=True)
class SessionInfo:
    """Public facts of a session, the same for every party: what each participant agreed to and
    checks against the chain before it takes part (see :func:`seccl.chain.session.verify_session`).

    ``update_size`` is the exact number of coordinates every update carries (⌈s·d⌉) and
    ``max_abs_value`` the largest magnitude an update value may have; a message outside either is
    refused at decoding.
    """

    chain_id: int
    board: str
    consensus: str
    server: str
    participants: tuple[str, ...]
    dimension: int
    candidates: int
    nonce: bytes
    tie_seed: bytes
    phases: Phases
    update_size: int
    max_abs_value: float
    initial_model: bytes

    @property
    def domain(self) -> SigningDomain:
        return SigningDomain(self.chain_id, self.board, self.consensus, self.nonce)

    @property
    def n(self) -> int:
        return len(self.participants)

    @property
    def terms(self) -> SessionTerms:
        return SessionTerms(
            self.server,
            self.participants,
            self.candidates,
            self.nonce,
            self.tie_seed,
            self.phases,
            self.initial_model,
        )

    def bounds(self) -> dict[str, int | float]:
        """The decoding bounds of this session, as keyword arguments of ``decode_message``."""
        return {
            "dimension": self.dimension,
            "participants": self.n,
            "update_size": self.update_size,
            "max_abs_value": self.max_abs_value,
        }
