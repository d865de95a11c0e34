"""A run's TensorBoard event file: ``tensorboard/events.out.tfevents.seccl`` in the run directory,
which grows by each round's figures as the round ends, so `tensorboard --logdir runs/` shows
every run under runs/ side by side while they run.

One file per run, always appended to: what it already holds is read back first and a round is
never written twice, so the records written after every round, and a resumed run, go on where
the file stops (a record torn by a kill is cut off first). The records are TFRecord frames of
TensorBoard ``Event`` protocol buffers, with the protobuf classes and the masked CRC-32C of
tensorboardX.

Tags, per round (step = round; step 0 is θ_0, before any training): ``test/accuracy``,
``test/macro_f1``, ``train/loss`` (the mean over the participants that trained), ``chain/gas``,
``chain/transactions``, ``time/seconds``, and under an attack ``attack/adversaries_elected`` and
``attack/attack_success_rate`` (backdoor success), named as the columns of metrics.csv.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.record_writer import masked_crc32c

from seccl.runtime.results import RunResult

DIRECTORY = "tensorboard"
FILE_NAME = "events.out.tfevents.seccl"  # TensorBoard reads every file whose name holds "tfevents"
FILE_VERSION = "brain.Event:2"


def round_scalars(result: RunResult, initial_macro_f1: float | None = None) -> dict[int, dict[str, float]]:
    """The scalars of every round of ``result`` by step (round), θ_0's at step 0."""
    if initial_macro_f1 is None:
        initial_macro_f1 = result.initial_macro_f1
    steps: dict[int, dict[str, float]] = {0: {"test/accuracy": float(result.initial_accuracy)}}
    if initial_macro_f1 is not None:
        steps[0]["test/macro_f1"] = float(initial_macro_f1)
    for r in result.rounds:
        values = {"test/accuracy": float(r.accuracy), "test/macro_f1": float(r.macro_f1)}
        if r.training_loss is not None:
            values["train/loss"] = float(r.training_loss)
        values["chain/gas"] = float(r.gas)
        values["chain/transactions"] = float(r.transactions)
        values["time/seconds"] = float(r.seconds)
        values.update({f"attack/{key}": float(value) for key, value in sorted(r.extra.items())})
        steps[r.round] = values
    return steps


def _frame(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the bytes, their masked CRC (little-endian)."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def read_events(path: Path) -> tuple[list[Event], int]:
    """The events of the file at ``path`` (none if there is no file), and the length in bytes of
    its intact records: reading stops at a torn or corrupt record."""
    data = path.read_bytes() if path.is_file() else b""
    events: list[Event] = []
    at = 0
    while at + 12 <= len(data):
        header = data[at : at + 8]
        if struct.unpack("<I", data[at + 8 : at + 12])[0] != masked_crc32c(header):
            break
        (length,) = struct.unpack("<Q", header)
        end = at + 12 + length + 4
        body = data[at + 12 : end - 4]
        if end > len(data) or struct.unpack("<I", data[end - 4 : end])[0] != masked_crc32c(body):
            break
        try:
            events.append(Event.FromString(body))
        except Exception:  # a record that is no Event: nothing after it is trusted either
            break
        at = end
    return events, at


def read_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event file at ``path``, by tag: ``[(step, value), …]`` in file order."""
    found: dict[str, list[tuple[int, float]]] = {}
    for event in read_events(path)[0]:
        for value in event.summary.value:
            found.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return found


def write_events(run_dir: Path, result: RunResult, initial_macro_f1: float | None = None) -> Path:
    """Append the rounds of ``result`` that the run's event file does not hold yet; returns it."""
    path = run_dir / DIRECTORY / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    events, intact = read_events(path)
    written = {int(e.step) for e in events if e.HasField("summary")}
    now = time.time()
    new: list[Event] = []
    if not events:
        new.append(Event(wall_time=now, file_version=FILE_VERSION))
    for step, values in round_scalars(result, initial_macro_f1).items():
        if step not in written:
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=v) for tag, v in values.items()])
            new.append(Event(wall_time=now, step=step, summary=summary))
    size = path.stat().st_size if path.is_file() else 0
    if not new and intact == size:
        return path
    with open(path, "r+b" if path.is_file() else "wb") as handle:
        handle.seek(intact)
        handle.truncate()
        handle.write(b"".join(_frame(e.SerializeToString()) for e in new))
        handle.flush()
        os.fsync(handle.fileno())
    return path
