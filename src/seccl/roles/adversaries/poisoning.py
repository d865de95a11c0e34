"""Poisoned training data: adversaries that train honestly on a corrupted copy of their data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seccl.learning.backdoor import poison_dataset
from seccl.learning.data import Dataset
from seccl.roles.adversaries.base import Adversary

__all__ = ["BackdoorParticipant", "LabelFlippingParticipant", "LowQualityParticipant"]


class _DataPoisoner(Adversary):
    """Trains honestly, but on a corrupted copy of its train set from ``start_round`` on."""

    poisoned: Dataset

    def training_data(self, round_: int) -> Dataset:
        return self.poisoned if self.attacking(round_) else self.data.train


class LowQualityParticipant(_DataPoisoner):
    """Passive: follows the protocol but holds poor data. Keeps a seeded ``keep`` of its train
    samples (all by default) and replaces a seeded ``label_noise`` fraction of their labels by
    uniformly random ones (which may by chance equal the true label)."""

    def __init__(self, *args: Any, label_noise: float = 0.8, keep: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not 0.0 <= label_noise <= 1.0:
            raise ValueError(f"label_noise must be in [0, 1], got {label_noise}")
        train = self.data.train
        if keep is not None and not 1 <= keep <= len(train):
            raise ValueError(f"keep must be in [1, {len(train)}], got {keep}")
        rng = np.random.default_rng([self.seed, self.index, 0x10])
        order = rng.permutation(len(train))
        kept = train.subset(np.sort(order[:keep]) if keep is not None else order)
        labels = kept.labels.copy()
        noisy = rng.choice(len(labels), size=round(label_noise * len(labels)), replace=False)
        labels[noisy] = rng.integers(0, train.num_classes, size=len(noisy))
        self.label_noise = label_noise
        self.noisy_indices = np.sort(noisy)
        self.poisoned = Dataset(kept.images, labels, train.num_classes)


class LabelFlippingParticipant(_DataPoisoner):
    """Fake labels (the paper's Figure 5 attack): trains on labels mapped ``y -> mapping[y]``,
    by default ``y -> num_classes − 1 − y`` (9 − y on MNIST)."""

    def __init__(self, *args: Any, mapping: Sequence[int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        train = self.data.train
        k = train.num_classes
        table = np.arange(k - 1, -1, -1) if mapping is None else np.asarray(mapping, dtype=np.int64)
        if table.shape != (k,) or table.min() < 0 or table.max() >= k:
            raise ValueError(f"mapping must give a label in [0, {k}) for each of the {k} classes")
        self.mapping = table.astype(np.int64)
        self.poisoned = Dataset(train.images, self.mapping[train.labels], k)


class BackdoorParticipant(_DataPoisoner):
    """Stamps the trigger of :mod:`seccl.learning.backdoor` on a seeded ``poison_fraction`` of
    its train images and relabels them ``target_label``; the other samples stay clean, so the
    update still looks useful on clean validation data."""

    def __init__(self, *args: Any, poison_fraction: float = 0.5, target_label: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.target_label = target_label
        self.poisoned, self.poisoned_indices = poison_dataset(
            self.data.train,
            fraction=poison_fraction,
            target_label=target_label,
            seed=self.seed * 1_000_003 + self.index,
        )
