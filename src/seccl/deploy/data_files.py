"""A participant's private data on its own disk: one ``.npz`` file per participant (written by
``seccl data split`` for trials), or a directory of IDX files (its own MNIST-format data, of which a
seeded fraction is kept aside for scoring the others)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from seccl.files import atomic_write_bytes
from seccl.learning.data import Dataset, ParticipantData, load_dataset
from seccl.learning.splits import split_participants

KEYS = ("train_images", "train_labels", "validation_images", "validation_labels", "num_classes")


class DataFileError(ValueError):
    """A participant's data file is missing or is not what SecCL expects."""


def write_participant_file(path: Path, data: ParticipantData) -> Path:
    """``data`` as one ``.npz`` file, readable by numpy alone, written atomically and private
    (0600): it is the participant's own data, which SecCL never shows anyone."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        train_images=data.train.images,
        train_labels=data.train.labels,
        validation_images=data.validation.images,
        validation_labels=data.validation.labels,
        num_classes=np.int64(data.train.num_classes),
    )
    atomic_write_bytes(Path(path), buffer.getvalue(), private=True)
    return Path(path)


def write_dataset_file(path: Path, data: Dataset) -> Path:
    """A held-out set (the server's test set, in trials) as ``.npz``: ``images``, ``labels``;
    private (0600) like the participants' files, for the server to share as it chooses."""
    buffer = io.BytesIO()
    np.savez(buffer, images=data.images, labels=data.labels, num_classes=np.int64(data.num_classes))
    atomic_write_bytes(Path(path), buffer.getvalue(), private=True)
    return Path(path)


def read_dataset_file(path: Path) -> Dataset:
    try:
        with np.load(Path(path), allow_pickle=False) as raw:
            return Dataset(raw["images"], raw["labels"], int(raw["num_classes"]))
    except (OSError, KeyError, ValueError) as exc:
        raise DataFileError(f"data set file {path}: {type(exc).__name__}: {exc}") from None


def read_participant_data(path: Path, *, validation_fraction: float = 0.2, seed: int = 0) -> ParticipantData:
    """A participant's (train, validation) data from a ``.npz`` file or an IDX directory."""
    path = Path(path)
    if path.is_dir():
        train, _ = load_dataset("idx", root=path)
        [part] = split_participants(train, 1, validation_fraction=validation_fraction, seed=seed)
        return part
    try:
        # allow_pickle=False: a data file is plain arrays; it can never run code.
        with np.load(path, allow_pickle=False) as raw:
            missing = [k for k in KEYS if k not in raw.files]
            if missing:
                raise DataFileError(
                    f"data file {path} lacks {', '.join(missing)} (expected {', '.join(KEYS)})"
                )
            classes = int(raw["num_classes"])
            return ParticipantData(
                Dataset(raw["train_images"], raw["train_labels"], classes),
                Dataset(raw["validation_images"], raw["validation_labels"], classes),
            )
    except DataFileError:
        raise
    except (OSError, ValueError) as exc:
        raise DataFileError(f"data file {path}: {type(exc).__name__}: {exc}") from None
