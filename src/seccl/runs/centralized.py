"""The paper's centralized baseline: one model trained on the union of the participants' train parts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from seccl.runs.config import RunConfig

if TYPE_CHECKING:
    from seccl.learning.training import EpochRecord


def train_baseline(
    config: RunConfig, epochs: int, out: Path, *, log: Callable[[str], None]
) -> tuple[list[EpochRecord], dict[str, Path]]:
    """Train one model centrally, for ``epochs`` epochs, on the samples the participants of
    ``config`` would hold, and write baseline.json and baseline.png into ``out``: the test
    accuracy, macro-F1 and loss of every epoch, and the files written."""
    # Imported here, not above: they pull in torch and matplotlib, which `seccl --help` never needs.
    import torch

    from seccl.learning.data import concat_datasets
    from seccl.learning.training import train_centralized_history
    from seccl.runs.launch import participant_data
    from seccl.runs.records import write_baseline

    torch.set_num_threads(1)
    parts, test = participant_data(config)
    union = concat_datasets([p.train for p in parts])
    log(
        f"baseline: centralized training on the union of {config.participants} participants' "
        f"train parts ({len(union)} samples), {epochs} epochs, lr {config.learning_rate:g}, "
        f"batch {config.batch_size}"
    )
    started = time.perf_counter()
    history = train_centralized_history(
        union, test, epochs=epochs, lr=config.learning_rate, batch_size=config.batch_size, seed=config.seed
    )
    for h in history:
        log(
            f"epoch {h.epoch:>2}/{epochs}  test accuracy {h.accuracy:.4f}  macro-F1 {h.macro_f1:.4f}  "
            f"loss {h.loss:.4f}"
        )
    files = write_baseline(
        config, epochs, history, train_samples=len(union), seconds=time.perf_counter() - started, out=out
    )
    return history, files
