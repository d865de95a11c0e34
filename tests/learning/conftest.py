"""Shared fixtures for the learning-layer tests: the train and test halves of the real digits."""

from __future__ import annotations

import numpy as np
import pytest

from seccl.learning.data import Dataset


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
