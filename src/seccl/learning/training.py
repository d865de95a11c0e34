"""Local training (plain mini-batch SGD, the paper's settings) and the centralized baseline."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seccl.learning.data import Dataset
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params, set_flat_params

__all__ = [
    "LEARNING_RATE",
    "MINI_BATCH",
    "EpochRecord",
    "recording_losses",
    "train_centralized",
    "train_centralized_history",
    "train_epoch",
    "train_local",
]

LEARNING_RATE = 0.02  # the paper's
MINI_BATCH = 32  # the paper's

# Listeners of every train_local call's per-epoch losses (see recording_losses).
_loss_listeners: list[Callable[[list[float]], None]] = []


@contextlib.contextmanager
def recording_losses() -> Iterator[list[list[float]]]:
    """Collect the per-epoch mean training losses of every :func:`train_local` call made inside
    the block, one list per call, in call order.

    Only observes: the losses are the ones :func:`train_epoch` computes anyway, so training
    results stay bit-identical with or without a recorder.
    """
    calls: list[list[float]] = []
    listener = calls.append
    _loss_listeners.append(listener)
    try:
        yield calls
    finally:
        _loss_listeners.remove(listener)


def train_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over the data in a fresh random order; returns the mean training loss.

    The shuffle draws from ``generator`` only, so results depend on its seed and never on
    the global torch RNG. The last batch may be smaller (as Keras does).
    """
    model.train()
    perm = torch.randperm(len(labels), generator=generator)
    total = 0.0
    for start in range(0, len(labels), batch_size):
        idx = perm[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(idx)
    return total / len(labels)


def _check(data: Dataset, epochs: int, lr: float, batch_size: int) -> None:
    if len(data) == 0:
        raise ValueError("cannot train on an empty data set")
    if epochs < 0 or batch_size < 1 or not lr > 0:
        raise ValueError(f"need epochs >= 0, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")


def train_local(
    params: np.ndarray,
    data: Dataset,
    *,
    epochs: int,
    lr: float = LEARNING_RATE,
    batch_size: int = MINI_BATCH,
    seed: int,
    model: nn.Module | None = None,
) -> np.ndarray:
    """Train from ``params`` on ``data`` with plain SGD (no momentum, no weight decay).

    Parameters
    ----------
    params
        The starting flat parameter vector (the global model); not modified.
    data
        The participant's private train set.
    epochs, lr, batch_size
        Local epochs; the paper's learning rate 0.02 and mini-batch 32.
    seed
        Seeds the shuffling (a private ``torch.Generator``): same inputs and seed, same output,
        bit for bit, for a fixed number of torch threads (the thread count changes how
        reductions are split, hence the last bits).
    model
        A model of the right architecture to train in place of a new one (saves building a
        model per call); its parameters are overwritten.

    Returns
    -------
    numpy.ndarray
        The trained flat parameters (float32, a new array).
    """
    _check(data, epochs, lr, batch_size)
    net = model if model is not None else build_model(0, data.num_classes)
    set_flat_params(net, params)
    # A fresh optimizer each call: plain SGD keeps no state, and a reused one must not leak
    # anything between participants sharing the model object.
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.0)
    generator = torch.Generator().manual_seed(seed)
    images = torch.from_numpy(np.ascontiguousarray(data.images))
    labels = torch.from_numpy(np.ascontiguousarray(data.labels))
    losses = [train_epoch(net, images, labels, optimizer, batch_size, generator) for _ in range(epochs)]
    for listener in list(_loss_listeners):
        listener(losses)
    return get_flat_params(net)


def train_centralized(
    train: Dataset,
    test: Dataset,
    *,
    epochs: int,
    lr: float = LEARNING_RATE,
    batch_size: int = MINI_BATCH,
    seed: int,
) -> list[float]:
    """The paper's baseline: one model trained on all of ``train`` with the same settings.

    The model is initialised with ``build_model(seed)`` and shuffled with ``seed``.
    Returns the test accuracy after each epoch (:func:`train_centralized_history` also gives
    macro-F1 and the training loss).
    """
    history = train_centralized_history(train, test, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return [h.accuracy for h in history]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of centralized training: the test accuracy and macro-F1 after it, and its mean
    training loss."""

    epoch: int
    accuracy: float
    macro_f1: float
    loss: float


def train_centralized_history(
    train: Dataset,
    test: Dataset,
    *,
    epochs: int,
    lr: float = LEARNING_RATE,
    batch_size: int = MINI_BATCH,
    seed: int,
) -> list[EpochRecord]:
    """:func:`train_centralized`, epoch by epoch: test accuracy, test macro-F1, training loss."""
    _check(train, epochs, lr, batch_size)
    model = build_model(seed, train.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)
    generator = torch.Generator().manual_seed(seed)
    images = torch.from_numpy(np.ascontiguousarray(train.images))
    labels = torch.from_numpy(np.ascontiguousarray(train.labels))
    scorer = Evaluator(test)
    history = []
    for epoch in range(1, epochs + 1):
        loss = train_epoch(model, images, labels, optimizer, batch_size, generator)
        accuracy, f1 = scorer.evaluate(get_flat_params(model))
        history.append(EpochRecord(epoch, accuracy, f1, loss))
    return history
