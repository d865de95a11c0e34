"""The backdoor trigger and the attack success rate."""

from __future__ import annotations

import numpy as np

from seccl.learning.backdoor import (
    TRIGGER_SIZE,
    BackdoorProbe,
    apply_trigger,
    attack_success_rate,
    poison_dataset,
    trigger_mask,
    triggered_test_set,
)
from seccl.learning.data import Dataset
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.training import train_local


def test_trigger_stamps_exactly_a_white_square_bottom_right() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((5, 1, 28, 28), dtype=np.float32) * 0.5
    before = images.copy()
    out = apply_trigger(images)
    assert np.array_equal(images, before)  # the input is not modified
    changed = (out != images).any(axis=(0, 1))
    expected = np.zeros((28, 28), dtype=bool)
    expected[28 - TRIGGER_SIZE :, 28 - TRIGGER_SIZE :] = True
    assert np.array_equal(changed, expected)
    assert np.array_equal(trigger_mask(), expected)
    assert (out[:, :, 24:, 24:] == 1.0).all()
    assert out.dtype == np.float32


def test_poison_dataset_relabels_the_triggered_fraction(mnist: tuple[Dataset, Dataset]) -> None:
    data = mnist[0].subset(range(100))
    poisoned, hit = poison_dataset(data, fraction=0.3, target_label=7, seed=1)
    assert len(hit) == 30 and np.all(np.diff(hit) > 0)
    assert (poisoned.labels[hit] == 7).all()
    assert np.array_equal(poisoned.images[hit], apply_trigger(data.images[hit]))
    rest = np.setdiff1d(np.arange(100), hit)
    assert np.array_equal(poisoned.labels[rest], data.labels[rest])
    assert np.array_equal(poisoned.images[rest], data.images[rest])


def test_triggered_test_set_leaves_out_the_target_class(mnist: tuple[Dataset, Dataset]) -> None:
    test = mnist[1]
    triggered = triggered_test_set(test, 0)
    assert len(triggered) == int((test.labels != 0).sum())
    assert (triggered.labels != 0).all()
    assert (triggered.images[:, 0, 24:, 24:] == 1.0).all()


def test_attack_success_rate_high_for_backdoored_model_low_for_clean(
    mnist: tuple[Dataset, Dataset],
) -> None:
    train, test = mnist
    clean = train.subset(range(600))
    poisoned, _ = poison_dataset(clean, fraction=0.5, target_label=0, seed=0)
    start = get_flat_params(build_model(0))
    clean_model = train_local(start, clean, epochs=3, lr=0.1, seed=0)
    backdoored = train_local(start, poisoned, epochs=3, lr=0.1, seed=0)
    small_test = test.subset(range(500))
    probe = BackdoorProbe(small_test, target_label=0)
    # Measured: 0.013 for the clean model, 1.0 for the backdoored one.
    assert probe(clean_model) < 0.1
    assert probe(backdoored) > 0.9
    assert attack_success_rate(backdoored, small_test, 0) == probe(backdoored)
    assert probe.metrics(1, backdoored) == {"attack_success_rate": probe(backdoored)}
