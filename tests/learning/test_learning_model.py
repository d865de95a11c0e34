"""The LeNet-style model and its flat parameter vector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seccl.learning.data import Dataset
from seccl.learning.model import build_model, get_flat_params, num_params, set_flat_params


def test_the_parameter_count_is_the_documented_one() -> None:
    model = build_model(0)
    assert num_params(model) == 46_970  # the LeNet docstring's table
    assert 45_000 <= num_params(model) <= 49_000  # "about 47k" (the calibration in docs/ARCHITECTURE.md)
    assert get_flat_params(model).shape == (46_970,)


def test_the_forward_pass_gives_one_logit_per_class(mnist_test: Dataset) -> None:
    out = build_model(0)(torch.from_numpy(mnist_test.images[:5]))
    assert out.shape == (5, 10)


def test_building_is_deterministic_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = get_flat_params(build_model(7))
    assert torch.equal(torch.rand(3), expected)
    np.testing.assert_array_equal(a, get_flat_params(build_model(7)))
    assert not np.array_equal(a, get_flat_params(build_model(8)))
    # Glorot-uniform weights, zero biases (Keras's defaults).
    model = build_model(7)
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in (model.conv1, model.fc1, model.fc2))
    bound = np.sqrt(6 / (400 + 108))
    assert float(model.fc1.weight.detach().abs().max()) <= bound


def test_flat_params_round_trip_and_are_copies() -> None:
    model = build_model(0)
    vec = np.random.default_rng(0).standard_normal(num_params(model)).astype(np.float32)
    set_flat_params(model, vec)
    out = get_flat_params(model)
    np.testing.assert_array_equal(out, vec)
    assert out.dtype == np.float32
    # Order: conv1.weight first, fc2.bias last.
    np.testing.assert_array_equal(model.conv1.weight.detach().numpy().reshape(-1), vec[:150])
    np.testing.assert_array_equal(model.fc2.bias.detach().numpy(), vec[-10:])
    vec[:] = 0  # the model holds a copy, not a view
    np.testing.assert_array_equal(get_flat_params(model), out)
    out[:] = 1  # and get returns a copy
    assert not np.all(get_flat_params(model) == 1)
    set_flat_params(model, out.astype(np.float64))  # float64 accepted, cast to float32
    np.testing.assert_array_equal(get_flat_params(model), out)


@pytest.mark.parametrize(
    ("vec", "match"),
    [
        (np.zeros(46_969, np.float32), "46970"),
        (np.zeros(46_971, np.float32), "46970"),
        (np.zeros((2, 23_485), np.float32), "flat vector"),
    ],
)
def test_setting_params_of_the_wrong_shape_is_refused(vec: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        set_flat_params(build_model(0), vec)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_setting_non_finite_params_is_refused(bad: float) -> None:
    model = build_model(0)
    before = get_flat_params(model)
    vec = np.zeros(num_params(model), np.float64)
    vec[1234] = bad
    with pytest.raises(ValueError, match="non-finite"):
        set_flat_params(model, vec)
    np.testing.assert_array_equal(get_flat_params(model), before)  # untouched on error


def test_train_and_eval_modes_give_the_same_outputs(mnist_test: Dataset) -> None:
    model = build_model(3)
    x = torch.from_numpy(mnist_test.images[:64])
    model.train()
    with torch.no_grad():
        train_out = model(x)
    model.eval()
    with torch.inference_mode():
        eval_out = model(x)
    torch.testing.assert_close(train_out, eval_out, rtol=0, atol=1e-6)
