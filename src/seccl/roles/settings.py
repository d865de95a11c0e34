"""The learning rules every participant follows, and the session facts they agree on."""

from __future__ import annotations

from dataclasses import dataclass

from seccl.protocol.session import SessionInfo

__all__ = ["LearningSettings", "SessionInfo"]


@dataclass(frozen=True)
class LearningSettings:
    """The paper's local-training settings (mini-batch 32, learning rate 0.02, s = 0.1)."""

    local_epochs: int = 10
    learning_rate: float = 0.02
    batch_size: int = 32
    share_fraction: float = 0.1
    aggregation: str = "shared-mean"
    election: str = "borda"
    assumed_fraction: float = 0.3
