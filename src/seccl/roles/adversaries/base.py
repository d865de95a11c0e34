"""The common base of malicious participants: honest until ``start_round``, then attacking."""

from __future__ import annotations

from typing import Any

import numpy as np

from seccl.learning.data import Dataset
from seccl.learning.sparse import delta
from seccl.learning.training import train_local
from seccl.roles.participant import Participant

__all__ = ["Adversary", "dense_update"]


class Adversary(Participant):
    """A participant that behaves honestly before ``start_round`` and attacks from it on."""

    def __init__(self, *args: Any, start_round: int = 1, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if start_round < 1:
            raise ValueError(f"start_round must be at least 1, got {start_round}")
        self.start_round = start_round
        self.trainings = 0  # calls of local training (a free rider keeps this at 0)

    def attacking(self, round_: int) -> bool:
        return round_ >= self.start_round

    def training_data(self, round_: int) -> Dataset:
        """The data :meth:`local_model` trains on in ``round_`` (poisoners override it)."""
        return self.data.train

    def local_model(self, params: np.ndarray, round_: int) -> np.ndarray:
        self.trainings += 1
        data = self.training_data(round_)
        if data is self.data.train:
            return super().local_model(params, round_)  # exactly the honest training
        return train_local(
            params,
            data,
            epochs=self.settings.local_epochs,
            lr=self.settings.learning_rate,
            batch_size=self.settings.batch_size,
            seed=self._seed_for(round_),
            model=self._model,
        )

    def dense_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
        """What it sends to a rule that takes whole updates (FedAvg, Krum, median…; see
        ``seccl.experiments.baselines``) instead of :meth:`make_update`'s top-``s``: its whole Δ.
        Attacks that forge their values override it, so that one behaviour serves both."""
        return delta(local, params)

    def _rng(self, round_: int, tag: int) -> np.random.Generator:
        """A generator private to this participant, round and purpose."""
        return np.random.default_rng([self.seed, self.index, round_, tag])

    def _random_support(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` distinct random coordinates, sorted, as a sparse update's indices."""
        return np.sort(rng.choice(self.session.dimension, size=k, replace=False)).astype(np.uint32)

    @property
    def share_count(self) -> int:
        """How many coordinates every update carries: the session's agreed ⌈s·d⌉. A forged update
        keeps exactly that many, or the server refuses it at decoding before anyone scores it."""
        return self.session.update_size


def dense_update(participant: Participant, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
    """What ``participant`` sends to a rule that takes whole updates: an honest participant its
    whole Δ, an adversary what its :meth:`Adversary.dense_update` forges."""
    if isinstance(participant, Adversary):
        return participant.dense_update(params, local, round_)
    return delta(local, params)
