"""How a data set is shared out among participants: IID or Dirichlet label skew, each share split
into the participant's own train and validation parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seccl.learning.data import Dataset, ParticipantData, load_dataset

__all__ = ["SPLIT_SCHEMES", "load_participant_data", "split_participants"]

SPLIT_SCHEMES: tuple[str, ...] = ("iid", "dirichlet")


def split_participants(
    train: Dataset,
    n: int,
    *,
    scheme: str = "iid",
    alpha: float = 0.5,
    validation_fraction: float = 0.2,
    per_participant: int | None = None,
    seed: int,
) -> list[ParticipantData]:
    """Give each of ``n`` participants a disjoint share of ``train``, split into train/validation.

    Parameters
    ----------
    train
        The pool to share out.
    n
        Number of participants.
    scheme
        ``"iid"``: a random equal split (the paper's). ``"dirichlet"``: label skew; participant
        ``i`` draws class proportions ``p_i ~ Dirichlet(alpha·1)`` and its share follows them
        as closely as the pool allows (see below).
    alpha
        Dirichlet concentration; smaller is more skewed. Only for ``"dirichlet"``.
    validation_fraction
        Fraction of each share kept as its private validation set (rounded; at least one
        sample when positive, and at least one train sample).
    per_participant
        Samples per participant (train + validation); default ``len(train) // n``.
    seed
        Makes the split deterministic.

    Notes
    -----
    Every participant gets exactly ``per_participant`` samples under both schemes, so the
    Dirichlet split skews only the label mix, never the quantity, and nobody ends up empty
    (the usual per-class Dirichlet split can leave a participant with nothing). The samples
    are dealt one at a time, round-robin over the participants, each taking a sample of the
    class it is furthest below its Dirichlet target on, among the classes the pool still has.
    Round-robin spreads any scarcity over everyone instead of starving the last participants.
    Within a share, the validation part is a random subset, so it follows the same skew.
    """
    if n < 1:
        raise ValueError(f"need at least one participant, got {n}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    size = len(train) // n if per_participant is None else per_participant
    if size < 1 or size * n > len(train):
        raise ValueError(f"cannot give {n} participants {size} samples each from {len(train)} samples")
    n_val = round(validation_fraction * size)
    if validation_fraction > 0:
        n_val = max(1, n_val)
    if size - n_val < 1:
        raise ValueError(f"{size} samples per participant leave none to train on")

    rng = np.random.default_rng(seed)
    if scheme == "iid":
        perm = rng.permutation(len(train))[: size * n]
        shares = [perm[i * size : (i + 1) * size] for i in range(n)]
    elif scheme == "dirichlet":
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        shares = _dirichlet_shares(train.labels, train.num_classes, n, size, alpha, rng)
    else:
        raise ValueError(f"unknown split scheme {scheme!r}; known: {', '.join(SPLIT_SCHEMES)}")

    out = []
    for share in shares:
        share = rng.permutation(share)
        out.append(ParticipantData(train.subset(share[n_val:]), train.subset(share[:n_val])))
    return out


def _dirichlet_shares(
    labels: np.ndarray,
    num_classes: int,
    n: int,
    size: int,
    alpha: float,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in range(num_classes)]
    remaining = np.array([len(p) for p in pools], dtype=np.int64)
    targets = rng.dirichlet(np.full(num_classes, alpha), size=n) * size  # [n, K]
    taken = np.zeros((n, num_classes), dtype=np.int64)
    shares: list[list[int]] = [[] for _ in range(n)]
    order = rng.permutation(n)  # who deals first in each pass
    for _ in range(size):
        for i in order:
            deficit = targets[i] - taken[i]
            deficit[remaining == 0] = -np.inf
            c = int(np.argmax(deficit))  # ties: the lower class index
            shares[i].append(int(pools[c].pop()))
            taken[i, c] += 1
            remaining[c] -= 1
    return [np.asarray(s, dtype=np.int64) for s in shares]


def load_participant_data(
    *,
    dataset: str,
    data_root: str | None,
    participants: int,
    split: str,
    alpha: float,
    per_participant: int | None,
    validation_fraction: float,
    seed: int,
) -> tuple[list[ParticipantData], Dataset]:
    """The participants' private (train, validation) parts and the held-out test set."""
    train, test = load_dataset(dataset, root=Path(data_root) if data_root else None, seed=seed)
    parts = split_participants(
        train,
        participants,
        scheme=split,
        alpha=alpha,
        validation_fraction=validation_fraction,
        per_participant=per_participant,
        seed=seed,
    )
    return parts, test
