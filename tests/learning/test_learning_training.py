"""Local training and the centralized baseline on real MNIST digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from seccl.learning.data import Dataset
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params, set_flat_params
from seccl.learning.splits import split_participants
from seccl.learning.training import train_centralized, train_local


@pytest.fixture(scope="module")
def share(mnist_train: Dataset) -> Dataset:
    """One participant's 320 train digits, as in the calibration setting."""
    return split_participants(mnist_train, 20, seed=0)[0].train


def _loss(params: np.ndarray, data: Dataset) -> float:
    model = build_model(0)
    set_flat_params(model, params)
    with torch.inference_mode():
        logits = model(torch.from_numpy(data.images))
        return float(F.cross_entropy(logits, torch.from_numpy(data.labels)))


def test_the_same_seed_gives_the_same_params(share: Dataset) -> None:
    theta = get_flat_params(build_model(0))
    theta_before = theta.copy()
    a = train_local(theta, share, epochs=1, seed=11)
    b = train_local(theta, share, epochs=1, seed=11, model=build_model(99))  # reused model
    c = train_local(theta, share, epochs=1, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)  # the seed drives the shuffling
    np.testing.assert_array_equal(theta, theta_before)  # input untouched
    assert a.dtype == np.float32 and a.shape == theta.shape


def test_training_does_not_touch_the_global_rng(share: Dataset) -> None:
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    train_local(get_flat_params(build_model(0)), share, epochs=1, seed=0)
    assert torch.equal(torch.rand(2), expected)


def test_local_training_improves_the_model(share: Dataset, mnist_test: Dataset) -> None:
    theta = get_flat_params(build_model(0))
    trained = train_local(theta, share, epochs=5, seed=0)
    assert _loss(trained, share) < _loss(theta, share) - 0.1
    scorer = Evaluator(mnist_test)
    before, after = scorer.accuracy(theta), scorer.accuracy(trained)
    assert before < 0.2
    assert after > before + 0.1
    # Zero epochs is the identity.
    np.testing.assert_array_equal(train_local(theta, share, epochs=0, seed=0), theta)


def test_the_first_sgd_step_matches_one_computed_by_hand(share: Dataset) -> None:
    # One batch covering the data, one epoch: θ' = θ − lr·∇L(θ) exactly (no momentum).
    small = share.subset(np.arange(16))
    model = build_model(0)
    theta = get_flat_params(model)
    loss = F.cross_entropy(model(torch.from_numpy(small.images)), torch.from_numpy(small.labels))
    loss.backward()
    grad = np.concatenate([p.grad.numpy().reshape(-1) for p in model.parameters()])
    out = train_local(theta, small, epochs=1, lr=0.02, batch_size=16, seed=0)
    np.testing.assert_allclose(out, theta - 0.02 * grad, rtol=1e-5, atol=1e-7)


def test_the_centralized_baseline_learns(mnist_train: Dataset, mnist_test: Dataset) -> None:
    train = mnist_train.subset(np.arange(3000))
    accs = train_centralized(train, mnist_test, epochs=2, seed=0)
    assert len(accs) == 2 and all(0.0 <= a <= 1.0 for a in accs)
    assert accs[-1] > max(0.7, accs[0])  # measured: 0.65 then 0.85
    assert train_centralized(train, mnist_test, epochs=2, seed=0) == accs


def test_training_refuses_bad_arguments(share: Dataset) -> None:
    theta = get_flat_params(build_model(0))
    with pytest.raises(ValueError, match="empty"):
        train_local(theta, share.subset([]), epochs=1, seed=0)
    with pytest.raises(ValueError, match="lr > 0"):
        train_local(theta, share, epochs=1, lr=0.0, seed=0)
    with pytest.raises(ValueError, match="46970"):
        train_local(theta[:-1], share, epochs=1, seed=0)
