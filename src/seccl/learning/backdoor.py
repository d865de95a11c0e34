"""Backdoor triggers: stamping a pixel pattern, poisoning a train set, measuring attack success.

The trigger is a ``TRIGGER_SIZE``×``TRIGGER_SIZE`` white square in the bottom-right corner of
the image. MNIST digits are centred in a black 28×28 frame, so the square never overlaps the
digit itself and a clean model has no reason to react to it; a model that learned the
backdoor maps any digit bearing it to the attacker's target label.
"""

from __future__ import annotations

import numpy as np

from seccl.learning.data import Dataset
from seccl.learning.evaluation import Evaluator

__all__ = [
    "TRIGGER_SIZE",
    "TRIGGER_VALUE",
    "BackdoorProbe",
    "apply_trigger",
    "attack_success_rate",
    "poison_dataset",
    "trigger_mask",
    "triggered_test_set",
]

TRIGGER_SIZE = 4
TRIGGER_VALUE = 1.0  # white: MNIST pixels lie in [0, 1]


def trigger_mask(height: int = 28, width: int = 28, *, size: int = TRIGGER_SIZE) -> np.ndarray:
    """Boolean ``[height, width]`` mask of the pixels the trigger sets."""
    if not 1 <= size <= min(height, width):
        raise ValueError(f"trigger size must be in [1, {min(height, width)}], got {size}")
    mask = np.zeros((height, width), dtype=bool)
    mask[-size:, -size:] = True
    return mask


def apply_trigger(
    images: np.ndarray, *, size: int = TRIGGER_SIZE, value: float = TRIGGER_VALUE
) -> np.ndarray:
    """A copy of ``images`` (``[..., H, W]``) with the trigger stamped on every image: the
    bottom-right ``size``×``size`` pixels set to ``value``; every other pixel is unchanged."""
    x = np.array(images, copy=True)
    if x.ndim < 2:
        raise ValueError(f"images must be [..., H, W], got shape {x.shape}")
    mask = trigger_mask(x.shape[-2], x.shape[-1], size=size)
    x[..., mask] = value
    return x


def poison_dataset(
    data: Dataset, *, fraction: float, target_label: int, seed: int, size: int = TRIGGER_SIZE
) -> tuple[Dataset, np.ndarray]:
    """Stamp the trigger on a seeded ``round(fraction·n)`` of ``data``'s samples and relabel
    them ``target_label``; the rest stay clean. Returns the new data set and the sorted
    indices of the poisoned samples."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"poison fraction must be in [0, 1], got {fraction}")
    if not 0 <= target_label < data.num_classes:
        raise ValueError(f"target label must be in [0, {data.num_classes}), got {target_label}")
    n = len(data)
    rng = np.random.default_rng([seed, 0xBAD])
    chosen = np.sort(rng.choice(n, size=round(fraction * n), replace=False)).astype(np.int64)
    images = data.images.copy()
    labels = data.labels.copy()
    images[chosen] = apply_trigger(images[chosen], size=size)
    labels[chosen] = target_label
    return Dataset(images, labels, data.num_classes), chosen


def triggered_test_set(test: Dataset, target_label: int, *, size: int = TRIGGER_SIZE) -> Dataset:
    """The test samples whose true label is not ``target_label``, trigger stamped, true labels
    kept (a sample already of the target class says nothing about the backdoor)."""
    keep = np.flatnonzero(test.labels != target_label)
    if len(keep) == 0:
        raise ValueError(f"the test set has no sample whose label is not {target_label}")
    return Dataset(apply_trigger(test.images[keep], size=size), test.labels[keep], test.num_classes)


class BackdoorProbe:
    """Measures attack success on one test set: build once (it stamps the trigger on the test
    images and keeps an :class:`Evaluator`), then call it with each model's parameters.

    :meth:`metrics` has the ``round_metrics`` signature of ``Simulation``, so a run can record
    the global model's attack success rate every round.
    """

    def __init__(self, test: Dataset, target_label: int = 0, *, size: int = TRIGGER_SIZE):
        self.target_label = target_label
        self.triggered = triggered_test_set(test, target_label, size=size)
        self._evaluator = Evaluator(self.triggered)

    def __call__(self, params: np.ndarray) -> float:
        """Fraction of triggered non-target test images the model classifies as the target."""
        return float((self._evaluator.predict(params) == self.target_label).mean())

    def metrics(self, round_: int, params: np.ndarray) -> dict[str, float]:
        return {"attack_success_rate": self(params)}


def attack_success_rate(params: np.ndarray, test: Dataset, target_label: int = 0) -> float:
    """Fraction of the test images whose true label is not ``target_label`` that the model
    ``params`` classifies as ``target_label`` once the trigger is stamped on them.

    Builds a :class:`BackdoorProbe` each call; keep a probe to score many models."""
    return BackdoorProbe(test, target_label)(params)
