"""Splitting a train set among participants: IID (the paper's) and Dirichlet label skew."""

from __future__ import annotations

import numpy as np
import pytest

from seccl.learning.data import Dataset, ParticipantData, concat_datasets, label_entropy
from seccl.learning.splits import split_participants


def _ids(data: Dataset, n: int) -> np.ndarray:
    """Source rows of a subset of the ``tagged_train`` fixture (pixel (0, 0) is row/n)."""
    return np.rint(data.images[:, 0, 0, 0].astype(np.float64) * n).astype(np.int64)


def _all_ids(parts: list[ParticipantData], n: int) -> list[np.ndarray]:
    return [np.concatenate([_ids(p.train, n), _ids(p.validation, n)]) for p in parts]


def _check_disjoint_and_consistent(parts: list[ParticipantData], source: Dataset) -> np.ndarray:
    n = len(source)
    ids = _all_ids(parts, n)
    flat = np.concatenate(ids)
    assert len(np.unique(flat)) == len(flat), "a sample was given to two participants"
    for p in parts:  # each sample keeps its own label
        for part in (p.train, p.validation):
            np.testing.assert_array_equal(part.labels, source.labels[_ids(part, n)])
    return flat


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
def test_default_split_covers_everything_disjointly(tagged_train: Dataset, scheme: str) -> None:
    parts = split_participants(tagged_train, 20, scheme=scheme, seed=0)
    assert len(parts) == 20
    for p in parts:
        assert (len(p.train), len(p.validation)) == (320, 80)
    flat = _check_disjoint_and_consistent(parts, tagged_train)
    np.testing.assert_array_equal(np.sort(flat), np.arange(8000))


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
def test_per_participant_caps_the_share(tagged_train: Dataset, scheme: str) -> None:
    parts = split_participants(
        tagged_train, 7, scheme=scheme, per_participant=50, validation_fraction=0.3, seed=2
    )
    assert [(len(p.train), len(p.validation)) for p in parts] == [(35, 15)] * 7
    assert len(_check_disjoint_and_consistent(parts, tagged_train)) == 350


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
def test_split_is_deterministic_by_seed(tagged_train: Dataset, scheme: str) -> None:
    a = _all_ids(split_participants(tagged_train, 10, scheme=scheme, seed=5), 8000)
    b = _all_ids(split_participants(tagged_train, 10, scheme=scheme, seed=5), 8000)
    c = _all_ids(split_participants(tagged_train, 10, scheme=scheme, seed=6), 8000)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_iid_shares_are_label_balanced(mnist_train: Dataset) -> None:
    parts = split_participants(mnist_train, 20, seed=0)
    for p in parts:
        share = concat_datasets([p.train, p.validation])
        # 400 random digits: every class present, none far from 40.
        assert share.class_counts().min() >= 15 and share.class_counts().max() <= 70


def test_dirichlet_is_label_skewed(mnist_train: Dataset) -> None:
    def mean_entropy(parts: list[ParticipantData]) -> float:
        return float(np.mean([label_entropy(concat_datasets([p.train, p.validation])) for p in parts]))

    iid = mean_entropy(split_participants(mnist_train, 20, seed=0))
    skew = {
        a: mean_entropy(split_participants(mnist_train, 20, scheme="dirichlet", alpha=a, seed=0))
        for a in (0.1, 0.5, 100.0)
    }
    assert iid > 3.2  # log2(10) = 3.32 for a perfectly balanced share
    assert skew[0.5] < iid - 0.5
    assert skew[0.1] < skew[0.5] < skew[100.0]
    assert skew[100.0] > 3.2  # a flat Dirichlet is close to IID

    # Skewed shares miss classes entirely; IID ones never do at 400 samples.
    def missing_classes(parts: list[ParticipantData]) -> float:
        return float(
            np.mean([(concat_datasets([p.train, p.validation]).class_counts() == 0).sum() for p in parts])
        )

    assert missing_classes(split_participants(mnist_train, 20, seed=0)) == 0.0
    assert missing_classes(split_participants(mnist_train, 20, scheme="dirichlet", alpha=0.1, seed=0)) >= 2.0


def test_validation_fraction_zero_and_rounding(mnist_train: Dataset) -> None:
    parts = split_participants(mnist_train, 4, per_participant=10, validation_fraction=0.0, seed=0)
    assert [(len(p.train), len(p.validation)) for p in parts] == [(10, 0)] * 4
    parts = split_participants(mnist_train, 4, per_participant=10, validation_fraction=0.01, seed=0)
    assert [(len(p.train), len(p.validation)) for p in parts] == [(9, 1)] * 4  # at least one


def test_split_rejects_bad_arguments(mnist_train: Dataset) -> None:
    with pytest.raises(ValueError, match="known: iid, dirichlet"):
        split_participants(mnist_train, 4, scheme="shards", seed=0)
    with pytest.raises(ValueError, match="cannot give 20 participants 401"):
        split_participants(mnist_train, 20, per_participant=401, seed=0)
    with pytest.raises(ValueError, match="at least one participant"):
        split_participants(mnist_train, 0, seed=0)
    with pytest.raises(ValueError, match="validation_fraction"):
        split_participants(mnist_train, 4, validation_fraction=1.0, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        split_participants(mnist_train, 4, scheme="dirichlet", alpha=0.0, seed=0)
    with pytest.raises(ValueError, match="none to train on"):
        split_participants(mnist_train, 4, per_participant=1, seed=0)
