"""Every bad input is refused before any work, with exit 2, a message naming the setting, and no
traceback: from flags and from TOML, for `seccl run` and `seccl baseline`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from seccl.cli.main import main
from seccl.runs import launch as session
from seccl.runs.config import ConfigError, RunConfig, check_given, load_config, read_toml

SMALL = ["-n", "3", "-r", "1", "--per-participant", "100", "--local-epochs", "1", "--no-progress"]


class WorkStarted(Exception):
    """Raised by the guard below: a check came after data loading or a chain backend."""


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly (as an internal error, exit 3) if data loads or a chain backend opens."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise WorkStarted("work started before the settings were checked")

    monkeypatch.setattr(session, "load_dataset", refuse)
    monkeypatch.setattr(session, "open_backend", refuse)


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *names: str) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, f"exit {code} for {argv}: {err}"
    assert "Traceback" not in err + captured.out
    assert err.startswith("seccl: "), err
    assert all(name in err for name in names), f"{names} not in {err!r}"
    return err


def _file(tmp_path: Path, name: str = "file") -> Path:
    path = tmp_path / name
    path.write_text("not a directory\n")
    return path


FLAG_CASES = [
    (["--chain", "notaurl"], ["--chain", "notaurl"]),
    (["--chain", "http://127.0.0.1:1"], ["--chain", "no Ethereum JSON-RPC node answers"]),
    (["--chain", "ftp://example.org"], ["--chain"]),
    (["--chain-id", "5"], ["--chain-id"]),
    (["--dataset", "idx"], ["--data-root"]),
    (["--seed", "-1"], ["--seed", "-1"]),
    (["--attack", "noise+noise"], ["--attack", "named twice"]),
    (["--attack", "nosie"], ["--attack", "did you mean 'noise'"]),
    (["--per-participant", "0"], ["--per-participant"]),
    (["--per-participant", "1"], ["--per-participant"]),
    (["--learning-rate", "inf"], ["--learning-rate", "inf"]),
    (["--learning-rate", "nan"], ["--learning-rate"]),
    (["--learning-rate", "0"], ["--learning-rate"]),
    (["-n", "abc"], ["--participants"]),
    (["-n", "2"], ["--participants"]),
    (["-n", "300"], ["--participants", "256"]),
    (["-r", "0"], ["--rounds"]),
    (["-l", "1.5"], ["--candidate-fraction"]),
    (["-s", "0"], ["--share-fraction"]),
    (["--server-attack", "teleport"], ["--server-attack"]),
    (["--attack", "noise", "-e", "0.1", "-n", "4"], ["--attack-fraction", "0 adversaries"]),
    (["--attack", "noise", "--attack-start-round", "99"], ["--attack-start-round", "never start"]),
    (["--attack-start-round", "99"], ["--attack-start-round", "no --attack"]),
    (["-e", "0.5"], ["--attack-fraction", "no --attack"]),
    (["--attack-target", "1"], ["--attack-target", "no --server-attack"]),
    (["--server-attack", "never-tally", "--attack-target", "1"], ["--attack-target", "single out"]),
    (["--server-attack", "drop", "--attack-target", "3"], ["--attack-target"]),
    (["--alpha", "0.1"], ["--alpha", "dirichlet"]),
    (["-l", "0.99", "-n", "4"], ["--candidate-fraction", "N−1 = 3", "0.75"]),
]


@pytest.mark.parametrize("flags, names", FLAG_CASES, ids=[" ".join(f) for f, _ in FLAG_CASES])
def test_a_bad_flag_is_refused_before_any_work(
    flags: list[str], names: list[str], capsys: pytest.CaptureFixture[str], no_work: None
) -> None:
    _refused(capsys, ["run", *SMALL, *flags], *names)


def test_an_output_directory_that_is_a_file_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_work: None
) -> None:
    target = _file(tmp_path)
    _refused(capsys, ["run", *SMALL, "--out", str(target)], "--out", "is a file")
    _refused(capsys, ["run", *SMALL, "--out", str(target / "below")], "--out", "which is a file")
    _refused(capsys, ["baseline", "-n", "3", "--out", str(target)], "--out")


def test_a_config_that_is_a_directory_or_missing_or_not_toml_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_work: None
) -> None:
    _refused(capsys, ["run", "--config", str(tmp_path)], "--config", "is a directory")
    _refused(capsys, ["run", "--config", str(tmp_path / "none.toml")], "--config", "does not exist")
    bad = tmp_path / "bad.toml"
    bad.write_text("rounds = [\n")
    _refused(capsys, ["run", "--config", str(bad)], "--config", "not valid TOML")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    _refused(capsys, ["baseline", "--config", str(binary)], "--config", "UTF-8")


TOML_CASES = [
    ('rounds = "2"', ["rounds", '"2"', "a string"]),
    ("rounds = 2.5", ["rounds", "2.5", "a float"]),
    ("chain = 5", ["chain", "an integer"]),
    ("participants = true", ["participants", "a boolean"]),
    ('chain = "notaurl"', ["chain"]),
    ("seed = -1", ["seed"]),
    ('attack = "noise+noise"', ["attack"]),
    ("per_participant = 0", ["per_participant"]),
    ("learning_rate = inf", ["learning_rate"]),
    ('dataset = "idx"', ["data_root"]),
    ('participants = 4\nattack = "noise"\nattack_fraction = 0.1', ["attack_fraction"]),
    ('rounds = 1\nattack = "noise"\nattack_start_round = 99', ["attack_start_round"]),
    ("attack_fraction = 0.5", ["attack_fraction", "no --attack"]),
    ("participants = 4\ncandidate_fraction = 0.99", ["candidate_fraction"]),
    ("participnts = 7", ["participnts", "did you mean 'participants'"]),
    ("local_epochs = 0", ["local_epochs"]),
    ("split = 3", ["split"]),
    ("out_dir = 1", ["out_dir"]),
]


@pytest.mark.parametrize("text, names", TOML_CASES, ids=[t for t, _ in TOML_CASES])
def test_a_bad_toml_value_is_refused_naming_the_key_and_the_file(
    text: str, names: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], no_work: None
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    err = _refused(capsys, ["run", "--config", str(path), "--no-progress"], *names)
    assert str(path) in err


def test_the_baseline_refuses_zero_epochs_and_bad_settings(
    capsys: pytest.CaptureFixture[str], no_work: None
) -> None:
    _refused(capsys, ["baseline", "--epochs", "0"], "epochs", "--epochs")
    _refused(capsys, ["baseline", "--epochs", "x"], "--epochs")
    _refused(capsys, ["baseline", "--seed", "-1"], "--seed")
    _refused(capsys, ["baseline", "--local-epochs", "3"], "--local-epochs")  # not a baseline option


def test_a_corrupt_idx_file_is_a_clear_error_naming_the_data_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "open_backend", lambda *_a, **_k: pytest.fail("a chain was opened"))
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / name).write_bytes(b"\x08\x03\x00\x00 not an IDX file")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"")
    err = _refused(capsys, ["run", *SMALL, "--dataset", "idx", "--data-root", str(tmp_path)], "--dataset")
    assert "bad magic number" in err and "--data-root" in err
    _refused(capsys, ["baseline", "--dataset", "idx", "--data-root", str(tmp_path)], "--dataset")


def test_more_samples_than_the_pool_holds_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "open_backend", lambda *_a, **_k: pytest.fail("a chain was opened"))
    _refused(capsys, ["run", *SMALL, "--per-participant", "5000"], "--per-participant", "at most 2666")


def test_the_command_line_prints_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('rounds = "2"\n')
    for argv in (["run", "--chain", "notaurl"], ["run", "--config", str(bad)], ["baseline", "--epochs", "0"]):
        done = subprocess.run(
            [sys.executable, "-m", "seccl.cli.main", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and done.stderr.startswith("seccl: ")


def test_a_config_file_sets_values_and_flags_override_them(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('participants = 7\nrounds = 4\nattack = "label-flip"\n')

    config = load_config(path)

    assert (config.participants, config.rounds, config.attack) == (7, 4, "label-flip")
    assert config.with_overrides({"rounds": 2, "seed": None}).rounds == 2
    assert load_config(path).run_dir.name.endswith("label-flip-e0.2")


def test_a_written_config_loads_back_and_passes_the_do_nothing_check(tmp_path: Path) -> None:
    config = RunConfig(participants=5, local_epochs=1, server_attack="never-tally", attack_target=0)
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())

    again = load_config(path)

    assert again == config
    check_given(again, ["participants", "local_epochs", "server_attack"])
    assert "# attack_fraction = 0.2  (there is no --attack)" in path.read_text()


def test_an_invalid_config_made_in_code_raises_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"participants \(-n/--participants\): got 2"):
        RunConfig(participants=2)
    with pytest.raises(ConfigError, match="unknown setting"):
        RunConfig(rounds=1, colour="red")  # type: ignore[call-arg]


def test_run_directories_differ_whenever_a_setting_differs() -> None:
    base = RunConfig()
    names = {
        base.run_dir,
        RunConfig(local_epochs=1).run_dir,
        RunConfig(per_participant=100).run_dir,
        RunConfig(learning_rate=0.1).run_dir,
        RunConfig(split="dirichlet", alpha=0.1).run_dir,
        RunConfig(attack="noise", attack_start_round=3).run_dir,
        RunConfig(server_attack="drop", attack_target=2).run_dir,
    }
    assert len(names) == 7
    assert base.run_dir == Path("runs/mnist-n10-r5-l0.2-seed0")
    assert base.baseline_dir(10) != base.baseline_dir(5)


def test_the_shipped_configs_load() -> None:
    for path in sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*.toml")):
        check_given(load_config(path), read_toml(path))


def test_titles_say_the_gram_gate_election_elects_at_least_m() -> None:
    from seccl.runs.plots import run_title

    borda = RunConfig(participants=20, candidate_fraction=0.2)
    gate = RunConfig(
        participants=20, candidate_fraction=0.2, election="gram-gate", aggregation="clipped-shared-mean"
    )
    assert (borda.elected_label(), gate.elected_label()) == ("M=4", "M\u22654")
    assert "N=20, M\u22654 (l=0.2)" in run_title(gate, gate.candidates)
