"""Local training (plain mini-batch SGD, the paper's settings) and the centralized baseline."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seccl.learning.data import Dataset
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params, set_flat_params

__all__ = ["LEARNING_RATE", "MINI_BATCH", "train_centralized", "train_epoch", "train_local"]

LEARNING_RATE = 0.02  # the paper's
MINI_BATCH = 32  # the paper's


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
        raise ValueError(
            f"need epochs >= 0, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}"
        )


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
    for _ in range(epochs):
        train_epoch(net, images, labels, optimizer, batch_size, generator)
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
    Returns the test accuracy after each epoch.
    """
    _check(train, epochs, lr, batch_size)
    model = build_model(seed, train.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)
    generator = torch.Generator().manual_seed(seed)
    images = torch.from_numpy(np.ascontiguousarray(train.images))
    labels = torch.from_numpy(np.ascontiguousarray(train.labels))
    scorer = Evaluator(test)
    accuracies = []
    for _ in range(epochs):
        train_epoch(model, images, labels, optimizer, batch_size, generator)
        accuracies.append(scorer.accuracy(get_flat_params(model)))
    return accuracies
