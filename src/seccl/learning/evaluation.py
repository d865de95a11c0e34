"""Scoring parameter vectors on a data set: accuracy and macro-F1 (sklearn's definition)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from seccl.learning.data import Dataset
from seccl.learning.model import build_model, set_flat_params

__all__ = ["Evaluator", "accuracy_score", "confusion_matrix", "macro_f1_score"]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 ``[num_classes, num_classes]``; entry ``[t, p]`` counts true ``t`` predicted ``p``."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of one length, got {t.shape}, {p.shape}")
    if len(t) and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def macro_f1_score(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Macro-averaged F1, equal to ``sklearn.metrics.f1_score(y_true, y_pred, average="macro")``.

    As in sklearn (``labels=None``) the average runs over the classes present in ``y_true``
    or ``y_pred``, not over all ``num_classes``: a class nobody has and nobody predicts does
    not count. Per class, ``F1 = 2·TP / (2·TP + FP + FN)``, which is 0 when the class is
    present but never predicted correctly, exactly sklearn's value under its default
    ``zero_division`` (its 0/0 case, a class absent from both, is excluded here). Empty
    input gives 0.0.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    fn = cm.sum(axis=1) - tp  # true class c, predicted something else
    fp = cm.sum(axis=0) - tp  # predicted c, true class something else
    present = (cm.sum(axis=1) + cm.sum(axis=0)) > 0
    if not present.any():
        return 0.0
    denom = 2 * tp + fp + fn
    f1 = 2 * tp[present] / denom[present]
    return float(f1.mean())


def accuracy_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of equal entries (0.0 when empty)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if len(t) else 0.0


TEST_BATCH = 250
"""The batch in which a run and a deployment's server score models on the test set (the figures
of their records; ``seccl evaluate`` and ``seccl audit`` recompute them in the same batches)."""


class Evaluator:
    """Scores flat parameter vectors on one fixed data set (a participant's validation set).

    Build it once: it keeps a model and the data as tensors, so each score is one parameter
    copy plus one forward pass in batches of ``batch_size`` under ``torch.inference_mode``.

    Parameters
    ----------
    data
        The samples to score on; must not be empty.
    batch_size
        Forward-pass chunk; the default takes an 80-sample validation set in one pass and
        bounds memory on a 10,000-sample test set.
    model
        A model of the right architecture to reuse; by default a new :class:`LeNet`.
    """

    def __init__(self, data: Dataset, *, batch_size: int = 2048, model: nn.Module | None = None):
        if len(data) == 0:
            raise ValueError("cannot evaluate on an empty data set")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.num_classes = data.num_classes
        self.labels = np.asarray(data.labels, dtype=np.int64)
        self._images = torch.from_numpy(np.ascontiguousarray(data.images))
        self._batch_size = batch_size
        self._model = model if model is not None else build_model(0, data.num_classes)
        self._model.eval()

    def __len__(self) -> int:
        return len(self.labels)

    def predict(self, params: np.ndarray) -> np.ndarray:
        """Predicted class of every sample (int64) under ``params``."""
        set_flat_params(self._model, params)
        with torch.inference_mode():
            chunks = [
                self._model(self._images[i : i + self._batch_size]).argmax(dim=1)
                for i in range(0, len(self.labels), self._batch_size)
            ]
        return torch.cat(chunks).numpy().astype(np.int64, copy=False)

    def evaluate(self, params: np.ndarray) -> tuple[float, float]:
        """``(accuracy, macro_f1)`` from one forward pass."""
        pred = self.predict(params)
        return (
            accuracy_score(self.labels, pred),
            macro_f1_score(self.labels, pred, self.num_classes),
        )

    def accuracy(self, params: np.ndarray) -> float:
        """Fraction of samples classified correctly."""
        return accuracy_score(self.labels, self.predict(params))

    def macro_f1(self, params: np.ndarray) -> float:
        """Macro-averaged F1 (sklearn's ``average="macro"``), the paper's score."""
        return macro_f1_score(self.labels, self.predict(params), self.num_classes)
