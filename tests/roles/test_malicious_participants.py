"""Unit level: each adversary's training data or upload differs from the honest one exactly as
specified, before ``start_round`` it is honest, and the registry builds the right roles."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import seccl.roles.adversaries.base as adversary_base
import seccl.roles.participant as participant_module
from seccl.chain.backends import EmbeddedChain
from seccl.election import ABSTAIN, tie_key, voter_ranking
from seccl.learning.backdoor import apply_trigger, trigger_mask
from seccl.learning.data import Dataset, ParticipantData
from seccl.learning.evaluation import Evaluator
from seccl.learning.sparse import SparseUpdate, delta, select_top_fraction
from seccl.protocol.envelope import open_message, sign_message
from seccl.protocol.messages import UpdateMessage, score_to_ppm
from seccl.roles.adversaries.poisoning import (
    BackdoorParticipant,
    LabelFlippingParticipant,
    LowQualityParticipant,
)
from seccl.roles.adversaries.registry import (
    PARTICIPANT_ATTACKS,
    adversary_count,
    attack_class,
    attack_factory,
    choose_adversaries,
)
from seccl.roles.adversaries.updates import (
    FreeRider,
    NoiseParticipant,
    ScalingParticipant,
    SignFlippingParticipant,
)
from seccl.roles.adversaries.voting import CollusionVoter
from seccl.roles.participant import Participant
from seccl.runtime.simulation import Simulation
from tests.roles.adversary_helpers import SETTINGS, mnist_parts


class Lab:
    """A deployed 4-participant session; builds any participant class in seat ``index``."""

    def __init__(self) -> None:
        parts, test = mnist_parts(10, 200, 0)
        self.parts = list(parts[:4])
        self.sim = Simulation(
            backend=EmbeddedChain(),
            parts=self.parts,
            test=test,
            rounds=1,
            candidate_fraction=0.5,
            settings=SETTINGS,
            seed=0,
        )
        self.params = self.sim.server.params.copy()  # θ_0

    def build(self, cls: type[Participant], index: int = 0, **options: Any) -> Any:
        return cls(
            index=index,
            account=self.sim.participants[index].account,
            data=self.parts[index],
            session=self.sim.session,
            settings=SETTINGS,
            backend=self.sim.backend,
            seed=0,
            **options,
        )

    def honest_update(self, index: int = 0, round_: int = 1) -> SparseUpdate:
        p = self.build(Participant, index)
        return p.make_update(self.params, p.local_model(self.params, round_), round_)


@pytest.fixture(scope="module")
def lab() -> Lab:
    return Lab()


@pytest.fixture(scope="module")
def honest(lab: Lab) -> SparseUpdate:
    return lab.honest_update()


def upload(p: Participant, params: np.ndarray, round_: int = 1) -> SparseUpdate:
    return p.make_update(params, p.local_model(params, round_), round_)


# ─────────────── forged updates ───────────────


def test_sign_flip_is_minus_the_honest_update(lab: Lab, honest: SparseUpdate) -> None:
    u = upload(lab.build(SignFlippingParticipant), lab.params)
    assert np.array_equal(u.indices, honest.indices)
    assert np.array_equal(u.values, -honest.values)
    doubled = upload(lab.build(SignFlippingParticipant, scale=2.0), lab.params)
    assert np.array_equal(doubled.values, -2 * honest.values)


def test_scale_is_ten_times_the_honest_update(lab: Lab, honest: SparseUpdate) -> None:
    u = upload(lab.build(ScalingParticipant), lab.params)
    assert np.array_equal(u.indices, honest.indices)
    assert np.array_equal(u.values, np.float32(10) * honest.values)


@pytest.mark.parametrize("cls", [SignFlippingParticipant, ScalingParticipant, NoiseParticipant])
def test_an_adversary_is_honest_before_its_start_round(
    lab: Lab, honest: SparseUpdate, cls: type[Participant]
) -> None:
    p = lab.build(cls, start_round=2)
    assert upload(p, lab.params, round_=1) == honest
    assert upload(p, lab.params, round_=2) != lab.honest_update(round_=2)


def test_noise_has_the_honest_structure_and_ten_times_the_spread(lab: Lab, honest: SparseUpdate) -> None:
    p = lab.build(NoiseParticipant)
    local = p.local_model(lab.params, 1)
    u = p.make_update(lab.params, local, 1)
    assert p.trainings == 1
    assert len(u) == len(honest) and u.dimension == honest.dimension
    assert len(np.intersect1d(u.indices, honest.indices)) < len(honest) // 5  # random coordinates
    sigma = 10 * float(np.std(delta(local, lab.params), dtype=np.float64))
    assert p.last_sigma == pytest.approx(sigma)
    assert float(u.values.std()) == pytest.approx(sigma, rel=0.05)
    assert abs(float(u.values.mean())) < 0.1 * sigma
    assert upload(lab.build(NoiseParticipant), lab.params) == u  # seeded
    assert upload(lab.build(NoiseParticipant, index=1), lab.params) != u


def test_noise_with_a_fixed_sigma_does_not_train(lab: Lab, honest: SparseUpdate) -> None:
    p = lab.build(NoiseParticipant, sigma=0.5)
    u = upload(p, lab.params)
    assert p.trainings == 0
    assert len(u) == len(honest)
    assert float(u.values.std()) == pytest.approx(0.5, rel=0.05)


# ─────────────── free riders ───────────────


@pytest.fixture
def count_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every call of train_local, wherever a participant calls it from."""
    calls: list[int] = []
    real = adversary_base.train_local

    def counted(*args: Any, **kwargs: Any) -> np.ndarray:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(adversary_base, "train_local", counted)
    monkeypatch.setattr(participant_module, "train_local", counted)
    return calls


def test_random_free_rider_uploads_small_noise_without_training(
    lab: Lab, honest: SparseUpdate, count_training: list[int]
) -> None:
    p = lab.build(FreeRider, mode="random")
    u = upload(p, lab.params)
    assert count_training == [] and p.trainings == 0
    assert len(u) == len(honest)
    assert float(np.abs(u.values).max()) < 0.01 < float(np.abs(honest.values).max())
    # The counter works: an honest participant's round trains once.
    upload(lab.build(Participant), lab.params)
    assert count_training == [1]


def test_stale_free_rider_replays_the_last_aggregate_step(lab: Lab, count_training: list[int]) -> None:
    p = lab.build(FreeRider, mode="stale")
    theta0 = lab.params
    first = upload(p, theta0, round_=1)  # nothing to replay yet: random
    assert float(np.abs(first.values).max()) < 0.01
    step = lab.honest_update().to_dense()  # as if θ_1 = θ_0 + one honest Δ
    theta1 = (theta0 + step).astype(np.float32)
    second = upload(p, theta1, round_=2)
    assert count_training == [1]  # only lab.honest_update trained, the free rider never did
    moved = delta(theta1, theta0)
    assert set(second.indices.tolist()) <= set(np.flatnonzero(moved).tolist())
    corr = np.corrcoef(second.values, moved[second.indices])[0, 1]
    assert corr > 0.95
    assert not np.array_equal(second.values, moved[second.indices])  # perturbed, not a copy


def test_free_rider_is_safe_with_no_train_data(lab: Lab) -> None:
    empty = Dataset(np.zeros((0, 1, 28, 28), np.float32), np.zeros(0, np.int64))
    data = ParticipantData(empty, lab.parts[0].validation)
    p = FreeRider(
        index=0,
        account=lab.sim.participants[0].account,
        data=data,
        session=lab.sim.session,
        settings=SETTINGS,
        backend=lab.sim.backend,
        seed=0,
        mode="stale",
    )
    assert len(upload(p, lab.params)) == len(select_top_fraction(lab.params, 0.1))


def test_free_rider_rejects_an_unknown_mode(lab: Lab) -> None:
    with pytest.raises(ValueError, match="mode"):
        lab.build(FreeRider, mode="lazy")


# ─────────────── poisoned training data ───────────────


def test_label_flipper_trains_on_nine_minus_y(lab: Lab) -> None:
    clean = lab.parts[0].train
    p = lab.build(LabelFlippingParticipant, start_round=3)
    assert p.training_data(2) is clean  # honest before start_round
    flipped = p.training_data(3)
    assert np.array_equal(flipped.labels, 9 - clean.labels)
    assert np.array_equal(flipped.images, clean.images)
    perm = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    q = lab.build(LabelFlippingParticipant, mapping=perm)
    assert np.array_equal(q.training_data(1).labels, (clean.labels + 1) % 10)
    with pytest.raises(ValueError, match="mapping"):
        lab.build(LabelFlippingParticipant, mapping=[0, 1])


def test_label_flipper_learns_the_flipped_labels(lab: Lab) -> None:
    p = lab.build(LabelFlippingParticipant)
    local = p.local_model(lab.params, 1)
    validation = lab.parts[0].validation
    flipped = Dataset(validation.images, 9 - validation.labels)
    assert p.evaluator.accuracy(local) < 0.2  # its own clean validation set
    assert Evaluator(flipped).accuracy(local) > 0.3


def test_low_quality_replaces_a_fraction_of_labels(lab: Lab) -> None:
    clean = lab.parts[0].train
    p = lab.build(LowQualityParticipant)
    data = p.training_data(1)
    assert len(data) == len(clean)
    assert len(p.noisy_indices) == round(0.8 * len(clean))
    kept = np.setdiff1d(np.arange(len(clean)), p.noisy_indices)
    # No samples dropped: same images in a permuted order; recover the order by image bytes.
    order = {clean.images[i].tobytes(): i for i in range(len(clean))}
    source = np.array([order[img.tobytes()] for img in data.images])
    assert np.array_equal(data.labels[kept], clean.labels[source[kept]])
    changed = (data.labels != clean.labels[source]).mean()
    assert 0.6 < changed < 0.8  # 80 % relabelled at random, a tenth of them by chance correctly
    again = lab.build(LowQualityParticipant)
    assert np.array_equal(again.training_data(1).labels, data.labels)  # seeded


def test_low_quality_keeps_only_some_samples(lab: Lab) -> None:
    p = lab.build(LowQualityParticipant, label_noise=0.0, keep=40)
    data = p.training_data(1)
    assert len(data) == 40
    assert p.training_data(1) is p.poisoned
    with pytest.raises(ValueError, match="keep"):
        lab.build(LowQualityParticipant, keep=0)


def test_backdoor_poisons_half_the_train_set(lab: Lab) -> None:
    clean = lab.parts[0].train
    p = lab.build(BackdoorParticipant, target_label=3)
    data = p.training_data(1)
    hit = p.poisoned_indices
    assert len(hit) == round(0.5 * len(clean))
    assert np.array_equal(data.images[hit], apply_trigger(clean.images[hit]))
    assert (data.labels[hit] == 3).all()
    rest = np.setdiff1d(np.arange(len(clean)), hit)
    assert np.array_equal(data.images[rest], clean.images[rest])
    assert np.array_equal(data.labels[rest], clean.labels[rest])
    mask = trigger_mask()
    assert (data.images[hit][:, 0][:, mask] == 1.0).all()


# ─────────────── colluding voters ───────────────


def test_colluder_scores_fellows_top_and_everyone_else_zero(lab: Lab) -> None:
    p = lab.build(CollusionVoter, index=1, colluders={1, 3}, start_round=2)
    updates = {j: lab.honest_update(j) for j in (0, 2, 3)}
    honest_scores = p.score_updates(1, lab.params, updates)
    assert honest_scores == lab.build(Participant, index=1).score_updates(1, lab.params, updates)
    scores = p.score_updates(2, lab.params, updates)
    assert scores == [0.0, 0.0, 0.0, 1.0]
    ballot = [ABSTAIN if j == 1 else score_to_ppm(s) for j, s in enumerate(scores)]
    tie_seed = bytes(range(32))  # any seed: the ranking follows its keys
    ranking = voter_ranking(ballot, 1, 2, tie_seed=tie_seed, round_=2)
    # The fellow first, then the one of the two zero scores with the lower tie key.
    assert ranking == (3, min(0, 2, key=lambda j: tie_key(tie_seed, 2, j)))
    with pytest.raises(ValueError, match="colluders"):
        lab.build(CollusionVoter, colluders={7})


# ─────────────── registry ───────────────


def test_the_registry_names_every_participant_attack() -> None:
    assert set(PARTICIPANT_ATTACKS) == {
        "low-quality",
        "label-flip",
        "backdoor",
        "noise",
        "sign-flip",
        "scale",
        "free-rider",
        "collude-votes",
        "collude-plausible",
    }
    assert all(issubclass(c, Participant) for c in PARTICIPANT_ATTACKS.values())


def test_attack_factory_builds_adversaries_only_at_their_seats(lab: Lab) -> None:
    factory = attack_factory("collude-votes", {0, 2}, start_round=4, options={})
    seats = [factory(index=i, **_kwargs(lab, i)) for i in range(4)]
    assert [type(s) for s in seats] == [CollusionVoter, Participant, CollusionVoter, Participant]
    assert isinstance(seats[0], CollusionVoter)
    assert seats[0].colluders == {0, 2} and seats[0].start_round == 4
    scale = attack_factory("scale", {1}, start_round=1, options={"scale": 3.0})(index=1, **_kwargs(lab, 1))
    assert isinstance(scale, ScalingParticipant) and scale.scale == 3.0
    with pytest.raises(ValueError, match="unknown"):
        attack_factory("teleport", {1}, start_round=1, options={})


def test_combined_attack_flips_labels_and_colludes(lab: Lab) -> None:
    cls = attack_class("label-flip+collude-votes")
    assert issubclass(cls, LabelFlippingParticipant) and issubclass(cls, CollusionVoter)
    p = attack_factory("label-flip+collude-votes", {0, 1}, start_round=1, options={})(
        index=0, **_kwargs(lab, 0)
    )
    assert isinstance(p, cls)
    assert np.array_equal(p.training_data(1).labels, 9 - lab.parts[0].train.labels)
    assert p.score_updates(1, lab.params, {}) == [0.0, 1.0, 0.0, 0.0]


def _kwargs(lab: Lab, i: int) -> dict[str, Any]:
    return {
        "account": lab.sim.participants[i].account,
        "data": lab.parts[i],
        "session": lab.sim.session,
        "settings": SETTINGS,
        "backend": lab.sim.backend,
        "seed": 0,
    }


@pytest.mark.parametrize(
    ("n", "e", "k"),
    [(20, 0.2, 4), (10, 0.1, 1), (20, 0.25, 5), (10, 0.25, 3), (30, 0.1, 3), (20, 0.0, 0), (20, 1.0, 20)],
)
def test_the_adversary_count_rounds_e_times_n_halves_up(n: int, e: float, k: int) -> None:
    assert adversary_count(n, e) == k
    chosen = choose_adversaries(n, e, seed=0)
    assert len(chosen) == k and chosen <= set(range(n))


def test_the_choice_of_adversaries_is_seeded() -> None:
    assert choose_adversaries(20, 0.2, seed=1) == choose_adversaries(20, 0.2, seed=1)
    assert len({frozenset(choose_adversaries(20, 0.2, seed=s)) for s in range(5)}) > 1
    with pytest.raises(ValueError):
        choose_adversaries(20, 1.5, seed=0)


# ─────────────── they follow the protocol: throttled, not rejected ───────────────


@pytest.mark.parametrize(
    "cls",
    [
        NoiseParticipant,
        SignFlippingParticipant,
        ScalingParticipant,
        FreeRider,
        LabelFlippingParticipant,
        LowQualityParticipant,
        BackdoorParticipant,
    ],
)
def test_every_forged_or_poisoned_upload_is_within_the_sessions_bounds(
    lab: Lab, cls: type[Participant]
) -> None:
    session = lab.sim.session
    p = lab.build(cls)
    signed = sign_message(UpdateMessage(1, p.address, upload(p, lab.params)), p.account, session.domain)

    opened = open_message(signed, session.domain, **session.bounds())

    assert isinstance(opened, UpdateMessage)
    assert len(opened.update) == session.update_size
    assert float(np.abs(opened.update.values).max()) <= session.max_abs_value
