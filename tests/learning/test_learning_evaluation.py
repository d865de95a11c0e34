"""Evaluation: macro-F1 equal to sklearn's on real predictions, accuracy, batching."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score as sk_accuracy
from sklearn.metrics import f1_score

from seccl.learning.data import Dataset
from seccl.learning.evaluation import Evaluator, confusion_matrix, macro_f1_score
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.splits import split_participants
from seccl.learning.training import train_local


def _sk_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on its zero_division cases
        return float(f1_score(y_true, y_pred, average="macro"))


@pytest.fixture(scope="module")
def params(mnist_train: Dataset) -> dict[str, np.ndarray]:
    """Real parameter vectors of different quality: untrained, briefly and better trained."""
    theta = get_flat_params(build_model(0))
    share = mnist_train.subset(np.arange(640))
    return {
        "untrained": theta,
        "brief": train_local(theta, share, epochs=2, seed=0),
        "trained": train_local(theta, share, epochs=8, seed=0),
    }


@pytest.mark.parametrize("which", ["untrained", "brief", "trained"])
def test_macro_f1_equals_sklearn_on_real_predictions(
    params: dict[str, np.ndarray], mnist_test: Dataset, which: str
) -> None:
    scorer = Evaluator(mnist_test)
    pred = scorer.predict(params[which])
    acc, f1 = scorer.evaluate(params[which])
    assert f1 == pytest.approx(_sk_macro_f1(mnist_test.labels, pred), abs=1e-12)
    assert acc == pytest.approx(sk_accuracy(mnist_test.labels, pred), abs=1e-12)
    assert scorer.macro_f1(params[which]) == f1 and scorer.accuracy(params[which]) == acc


def test_scores_order_models_by_quality(params: dict[str, np.ndarray], mnist_test: Dataset) -> None:
    scorer = Evaluator(mnist_test)
    f1s = [scorer.macro_f1(params[k]) for k in ("untrained", "brief", "trained")]
    assert f1s[0] < f1s[1] < f1s[2]
    assert f1s[2] > 0.7


def test_macro_f1_on_skewed_validation_sets(params: dict[str, np.ndarray], mnist_train: Dataset) -> None:
    # Dirichlet validation sets miss classes, and predictions hit classes absent from y_true:
    # sklearn averages over the union of both label sets.
    parts = split_participants(mnist_train, 20, scheme="dirichlet", alpha=0.1, seed=0)
    checked_absent = False
    for p in parts:
        scorer = Evaluator(p.validation)
        for theta in params.values():
            pred = scorer.predict(theta)
            absent = set(pred.tolist()) - set(p.validation.labels.tolist())
            checked_absent |= bool(absent)
            assert scorer.macro_f1(theta) == pytest.approx(_sk_macro_f1(p.validation.labels, pred), abs=1e-12)
    assert checked_absent


def test_macro_f1_scores_zero_for_a_class_never_predicted_or_never_true() -> None:
    # Class 1 true but never predicted (recall 0); class 3 predicted but never true
    # (precision 0); classes 2, 4..9 in neither: excluded from the average.
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 3, 0, 0])
    expected = _sk_macro_f1(y_true, y_pred)
    assert macro_f1_score(y_true, y_pred, 10) == pytest.approx(expected, abs=1e-15)
    # Class 0: TP 1, FP 2 (both 1s), FN 1 -> 2/(2+2+1) = 0.4; classes 1 and 3 score 0.
    assert expected == pytest.approx((0.4 + 0 + 0) / 3)
    for zd in (0.0, "warn"):
        assert macro_f1_score(y_true, y_pred, 10) == pytest.approx(
            f1_score(y_true, y_pred, average="macro", zero_division=zd), abs=1e-15
        )
    assert macro_f1_score(np.array([], np.int64), np.array([], np.int64), 10) == 0.0


def test_macro_f1_on_random_labels_equals_sklearn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        k = int(rng.integers(1, 10))
        y_true, y_pred = rng.integers(0, k, n), rng.integers(0, 10, n)
        assert macro_f1_score(y_true, y_pred, 10) == pytest.approx(_sk_macro_f1(y_true, y_pred), abs=1e-12)


def test_the_confusion_matrix_counts_true_by_predicted_labels() -> None:
    cm = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_batching_does_not_change_predictions(params: dict[str, np.ndarray], mnist_test: Dataset) -> None:
    small = mnist_test.subset(np.arange(300))
    a = Evaluator(small).predict(params["brief"])
    b = Evaluator(small, batch_size=7).predict(params["brief"])
    np.testing.assert_array_equal(a, b)


def test_the_evaluator_refuses_an_empty_set_and_bad_params(mnist_test: Dataset) -> None:
    with pytest.raises(ValueError, match="empty"):
        Evaluator(mnist_test.subset([]))
    scorer = Evaluator(mnist_test.subset(np.arange(10)))
    bad = np.full(46_970, np.nan, np.float32)
    with pytest.raises(ValueError, match="non-finite"):
        scorer.macro_f1(bad)
