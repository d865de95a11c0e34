"""What every role of one session agrees on: the addresses, the model's size, the learning rules."""

from __future__ import annotations

from dataclasses import dataclass

from seccl.protocol.envelope import SigningDomain


@dataclass(frozen=True)
class SessionInfo:
    """Public facts of a session, the same for every party."""

    chain_id: int
    board: str
    consensus: str
    server: str
    participants: tuple[str, ...]
    dimension: int
    candidates: int

    @property
    def domain(self) -> SigningDomain:
        return SigningDomain(self.chain_id, self.board)

    @property
    def n(self) -> int:
        return len(self.participants)


@dataclass(frozen=True)
class LearningSettings:
    """The paper's local-training settings (mini-batch 32, learning rate 0.02, s = 0.1)."""

    local_epochs: int = 10
    learning_rate: float = 0.02
    batch_size: int = 32
    share_fraction: float = 0.1
    aggregation: str = "shared-mean"
