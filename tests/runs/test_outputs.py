"""What a researcher takes from a run: its pictures (elected.png, scores.png, loss.png beside
accuracy.png), round 0 in metrics.csv, the TensorBoard event file, `seccl evaluate` on a saved
model, the backdoor column of compare.md, and bands over seeds that stay within [0, 1]."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from tensorboardX.crc32c import crc32c
from tensorboardX.proto.event_pb2 import Event

from seccl.cli.main import main
from seccl.runs.compare import band_over_seeds, compare_runs, load_entry, title
from seccl.runs.config import RunConfig
from seccl.runs.plots import clipped_band
from seccl.runs.records import write_run
from seccl.runs.tensorboard import DIRECTORY, FILE_NAME, write_events
from seccl.runtime.results import RoundRecord, RunResult

PNG = b"\x89PNG\r\n\x1a\n"
PICTURES = ("accuracy.png", "elected.png", "scores.png", "loss.png")


@pytest.fixture(scope="module")
def backdoor_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-round backdoor run (N = 4, one adversary) on the embedded EVM."""
    out = tmp_path_factory.mktemp("outputs") / "backdoor"
    argv = ["run", "-n", "4", "-r", "2", "-l", "0.5", "--per-participant", "100", "--local-epochs", "1"]
    attack = ["--attack", "backdoor", "-e", "0.25", "--chain", "embedded", "--no-progress"]
    assert main([*argv, *attack, "--out", str(out)]) == 0
    return out


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG, path
    with Image.open(path) as image:
        image.verify()  # the chunks and their CRCs are sound
    with Image.open(path) as image:
        assert image.width > 200 and image.height > 200, path


def tfrecords(path: Path) -> list[Event]:
    """The events of a TFRecord file, read here on their own (length, masked CRC-32C, data, CRC)."""

    def masked(data: bytes) -> int:
        x = crc32c(data) & 0xFFFFFFFF
        return (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    data, at, events = path.read_bytes(), 0, []
    while at < len(data):
        header = data[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[at + 8 : at + 12])[0] == masked(header)
        body = data[at + 12 : at + 12 + length]
        assert struct.unpack("<I", data[at + 12 + length : at + 16 + length])[0] == masked(body)
        events.append(Event.FromString(body))
        at += 16 + length
    return events


def scalars(path: Path) -> dict[str, dict[int, float]]:
    found: dict[str, dict[int, float]] = {}
    for event in tfrecords(path):
        for value in event.summary.value:
            assert event.step not in found.get(value.tag, {}), f"{value.tag} at step {event.step} twice"
            found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


# ─────────────────────────────── a real run ───────────────────────────────


def test_a_run_directory_holds_the_pictures_and_round_0_in_metrics_csv(backdoor_run: Path) -> None:
    for name in PICTURES:
        assert_png(backdoor_run / name)
    metrics = json.loads((backdoor_run / "metrics.json").read_text())
    assert 0.0 < metrics["initial_macro_f1"] <= 1.0
    with (backdoor_run / "metrics.csv").open() as handle:
        reader = csv.DictReader(handle)
        rows, columns = list(reader), reader.fieldnames
    assert [int(r["round"]) for r in rows] == [0, 1, 2]
    first, later = rows[0], rows[1:]
    assert float(first["accuracy"]) == metrics["initial_accuracy"]
    assert float(first["macro_f1"]) == metrics["initial_macro_f1"]
    # Every column of a round is there, in the same order; round 0 leaves what it did not count empty.
    assert columns is not None and columns[:3] == ["round", "accuracy", "macro_f1"]
    assert {"elected", "gas", "training_loss", "attack_success_rate", "adversaries_elected"} <= set(columns)
    assert all(first[c] == "" for c in columns[3:])
    for row, recorded in zip(later, metrics["rounds"], strict=True):
        assert float(row["accuracy"]) == recorded["accuracy"] and int(row["gas"]) == recorded["gas"]
    run = json.loads((backdoor_run / "run.json").read_text())
    assert {"elected.png", "scores.png", "loss.png", "tensorboard/"} <= set(run["files"])


def test_the_tensorboard_event_file_holds_every_rounds_figures(backdoor_run: Path) -> None:
    path = backdoor_run / DIRECTORY / FILE_NAME
    events = tfrecords(path)
    assert events[0].file_version == "brain.Event:2"
    found = scalars(path)
    metrics = json.loads((backdoor_run / "metrics.json").read_text())
    rows = metrics["rounds"]

    assert set(found) == {
        "test/accuracy",
        "test/macro_f1",
        "train/loss",
        "chain/gas",
        "chain/transactions",
        "time/seconds",
        "attack/adversaries_elected",
        "attack/attack_success_rate",
    }
    assert found["test/accuracy"] == pytest.approx(
        {0: metrics["initial_accuracy"], **{r["round"]: r["accuracy"] for r in rows}}
    )
    assert found["test/macro_f1"] == pytest.approx(
        {0: metrics["initial_macro_f1"], **{r["round"]: r["macro_f1"] for r in rows}}
    )
    assert found["train/loss"] == pytest.approx({r["round"]: r["training_loss"] for r in rows})
    assert found["chain/gas"] == {r["round"]: r["gas"] for r in rows}
    assert found["attack/adversaries_elected"] == {r["round"]: len(r["adversaries_elected"]) for r in rows}
    assert found["attack/attack_success_rate"] == pytest.approx(
        {r["round"]: r["attack_success_rate"] for r in rows}
    )


def test_evaluate_prints_the_accuracy_the_run_recorded_for_that_round(backdoor_run: Path, capsys) -> None:
    metrics = json.loads((backdoor_run / "metrics.json").read_text())
    models = backdoor_run / "models"

    assert main(["evaluate", str(models / "round-0002.pt"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["accuracy"] == metrics["rounds"][1]["accuracy"]
    assert scored["macro_f1"] == metrics["rounds"][1]["macro_f1"]
    assert (scored["dataset"], scored["seed"], scored["samples"]) == ("mnist", 0, 2000)

    assert main(["evaluate", str(models / "round-0000.pt"), "--dataset", "mnist", "--seed", "0"]) == 0
    printed = capsys.readouterr().out
    assert f"test accuracy {metrics['initial_accuracy']:.4f}" in printed
    assert f"macro-F1 {metrics['initial_macro_f1']:.4f}" in printed


@pytest.mark.parametrize(
    "content",
    [b"not a model at all", b"PK\x03\x04 a torn zip", None],
    ids=["junk", "torn", "missing"],
)
def test_evaluate_a_file_that_is_no_model_exits_2_with_one_line(
    tmp_path: Path, capsys, content: bytes | None
) -> None:
    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)

    assert main(["evaluate", str(path)]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"seccl: evaluate: {path}") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_evaluate_refuses_a_state_dict_of_another_model(tmp_path: Path, capsys) -> None:
    import torch

    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, path)

    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is not a state_dict of SecCL's model" in err and err.count("\n") == 1


def test_compare_md_has_a_backdoor_column_and_the_title_says_what_was_compared(
    backdoor_run: Path, tmp_path: Path
) -> None:
    files, text = compare_runs([backdoor_run], tmp_path / "cmp")

    header, _, row = text.splitlines()[:3]
    columns = [c.strip() for c in header.strip("|").split("|")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    rows = json.loads((backdoor_run / "metrics.json").read_text())["rounds"]
    assert cells[columns.index("backdoor success")] == f"{rows[-1]['attack_success_rate']:.4f}"
    assert_png(files["plot"])
    words = title([load_entry(backdoor_run)])
    assert "mnist" in words and "N=4" in words and "backdoor e=0.25" in words


# ─────────────────────────────── records built by hand ───────────────────────────────


def _round(r: int, *, elected: tuple[int, ...]) -> RoundRecord:
    n = 4
    return RoundRecord(
        round=r,
        accuracy=0.5 + 0.1 * r,
        macro_f1=0.4 + 0.1 * r,
        candidates=elected,
        seconds=1.5,
        gas=1000 * r,
        transactions=12,
        ballots=n,
        evidence=0,
        rejections=0,
        extra={"adversaries_elected": float(len(set(elected) & {3}))},
        scores=tuple(
            None if i == 2 else tuple(None if i == j else 100_000 * (i + j) for j in range(n))
            for i in range(n)
        ),
        borda_points=(3, 2, 1, 0),
        abstentions=(0, 0, 0, 0),
        adversaries=(3,),
        times={"training": 1.0, "evaluation": 0.2, "chain": 0.2, "other": 0.1},
        training_loss=2.0 / r,
        training_losses=(2.0 / r, None, 2.1 / r, 1.9 / r),
    )


def _result(rounds: int, *, initial_macro_f1: float | None = 0.05) -> RunResult:
    return RunResult(
        rounds=[_round(r, elected=(0, 1)) for r in range(1, rounds + 1)],
        evidence=[],
        verdicts=[],
        rejections=[],
        transactions=[],
        chain={"candidates_per_round": 2},
        initial_accuracy=0.1,
        initial_macro_f1=initial_macro_f1,
        participants=[{"index": i, "adversary": i == 3} for i in range(4)],
    )


def test_records_with_no_adversary_elected_are_written_and_round_0_survives_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no baseline of runs/ nearby
    config = RunConfig(
        participants=4,
        rounds=3,
        candidate_fraction=0.5,
        attack="label-flip",
        attack_fraction=0.25,
        out_dir="r",
    )
    run_dir = tmp_path / "r"
    write_run(config, _result(2), run_dir)
    # A resumed run has not measured θ_0 itself: metrics.json keeps what the first process did.
    files = write_run(config, _result(3, initial_macro_f1=None), run_dir)

    assert {"elected", "scores", "loss", "tensorboard"} <= set(files)
    for name in PICTURES:
        assert_png(run_dir / name)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["initial_macro_f1"] == 0.05
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [r["round"] for r in rows] == ["0", "1", "2", "3"] and rows[0]["macro_f1"] == "0.05"
    found = scalars(files["tensorboard"])
    assert found["test/accuracy"] == pytest.approx({0: 0.1, 1: 0.6, 2: 0.7, 3: 0.8})  # each round once
    assert found["test/macro_f1"][0] == pytest.approx(0.05)
    assert found["attack/adversaries_elected"] == {1: 0.0, 2: 0.0, 3: 0.0}


def test_the_event_file_is_appended_to_and_a_torn_record_is_cut_off(tmp_path: Path) -> None:
    path = write_events(tmp_path, _result(1))
    size = path.stat().st_size
    assert write_events(tmp_path, _result(1)) == path and path.stat().st_size == size  # nothing new

    with path.open("ab") as handle:  # a kill in the middle of a record
        handle.write(b"\x20\x00\x00\x00\x00\x00\x00\x00\x01\x02")
    write_events(tmp_path, _result(2))

    found = scalars(path)
    assert found["test/accuracy"] == pytest.approx({0: 0.1, 1: 0.6, 2: 0.7})
    assert found["train/loss"] == pytest.approx({1: 2.0, 2: 1.0})
    assert sum(bool(e.file_version) for e in tfrecords(path)) == 1


# ─────────────────────────────── bands over seeds ───────────────────────────────


def test_a_band_over_seeds_is_clipped_to_0_and_1() -> None:
    mean, low, high = band_over_seeds([[0.0, 0.98, 1.0], [0.0, 0.9, 1.0], [0.3, 1.0, 0.6]])

    assert mean == pytest.approx([0.1, 0.96, 0.8666667])
    assert low[0] == 0.0 and high[1] == 1.0 and high[2] == 1.0  # mean ± std would leave [0, 1]
    assert low[2] == pytest.approx(0.8666667 - 0.2309401)
    assert clipped_band([0.97]) == (0.97, 0.97, 0.97)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=1, max_size=6), min_size=1, max_size=5))
def test_no_band_ever_leaves_0_to_1(runs: list[list[float]]) -> None:
    mean, low, high = band_over_seeds(runs)
    assert len(mean) == min(len(r) for r in runs)
    for m, lo, hi in zip(mean, low, high, strict=True):
        assert 0.0 <= lo <= m + 1e-12 and m - 1e-12 <= hi <= 1.0
