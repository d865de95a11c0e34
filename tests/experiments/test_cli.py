"""The `seccl` command: configs, the run directory it writes, its chain backends, its errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from seccl.experiments.cli import main
from seccl.experiments.config import ConfigError, RunConfig, load_config

SMALL = ["-n", "3", "-r", "1", "--per-participant", "60", "--local-epochs", "1", "--no-progress"]


def test_a_run_writes_its_config_metrics_chain_records_evidence_and_plot(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"

    assert main(["run", *SMALL, "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "round  1/1" in printed and "evidence: none" in printed
    assert load_config(out / "config.toml").participants == 3
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["round"]) for r in rows] == [1]
    assert 0.0 <= float(rows[0]["accuracy"]) <= 1.0 and int(rows[0]["gas"]) > 0
    chain = json.loads((out / "chain.json").read_text())
    assert chain["backend"] == "embedded" and len(chain["participants"]) == 3
    actions = [t["action"] for t in chain["transactions"]]
    assert actions.count("post update") == 3 and actions.count("submitScores") == 3
    assert all(t["tx_id"].startswith("0x") and len(t["tx_id"]) == 66 for t in chain["transactions"])
    assert json.loads((out / "evidence.json").read_text()) == {"evidence": [], "rejected_messages": []}
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_prints_and_records_a_server_attack_with_who_found_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "attacked"

    assert (
        main(["run", *SMALL, "--server-attack", "tamper-all", "--attack-target", "0", "--out", str(out)]) == 0
    )

    printed = capsys.readouterr().out
    assert "EVIDENCE: 2 findings" in printed and "delivered-update-mismatch" in printed
    evidence = json.loads((out / "evidence.json").read_text())["evidence"]
    assert {e["kind"] for e in evidence} == {"delivered-update-mismatch"}
    assert all(e["tx_id"] and e["recorded_digest"] != e["expected_digest"] for e in evidence)


@pytest.mark.anvil
def test_a_run_on_a_local_anvil_node_it_starts_and_stops(tmp_path: Path, capsys) -> None:
    out = tmp_path / "anvil-run"

    assert main(["run", *SMALL, "--chain", "anvil", "--out", str(out)]) == 0

    chain = json.loads((out / "chain.json").read_text())
    assert chain["backend"] == "anvil" and chain["chain_id"] == 31337
    assert (out / "anvil-state.json").exists()
    assert "evidence: none" in capsys.readouterr().out


def test_the_baseline_trains_centrally_on_the_union_of_the_participants_data(tmp_path: Path) -> None:
    out = tmp_path / "baseline"

    assert main(["baseline", "-n", "3", "--per-participant", "60", "--epochs", "2", "--out", str(out)]) == 0

    record = json.loads((out / "baseline.json").read_text())
    assert record["train_samples"] == 3 * 48  # 60 each, 20% kept for validation
    assert len(record["accuracy_per_epoch"]) == 2


@pytest.mark.parametrize(
    "dataset, hint",
    [("idx", "Expected the four files"), ("fashion-mnist", "apt-get install dataset-fashion-mnist")],
)
def test_a_missing_data_set_says_how_to_get_it(tmp_path: Path, capsys, dataset: str, hint: str) -> None:
    code = main(["run", *SMALL, "--dataset", dataset, "--data-root", str(tmp_path / "none")])

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("seccl: ") and "train-images-idx3-ubyte" in err and hint in err


def test_a_config_file_sets_values_and_flags_override_them(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('participants = 7\nrounds = 4\nattack = "label-flip"\n')

    config = load_config(path)

    assert (config.participants, config.rounds, config.attack) == (7, 4, "label-flip")
    assert config.with_overrides({"rounds": 2, "seed": None}).rounds == 2
    assert load_config(path).run_dir.name.endswith("label-flip-e0.2")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("participnts = 7\n", "unknown keys"),
        ("participants = 2\n", "at least 3"),
        ("candidate_fraction = 1.5\n", "candidate_fraction"),
        ('attack = "teleport"\n', "unknown participant attack"),
        ('server_attack = "teleport"\n', "unknown server attack"),
        ("rounds = [\n", "not valid TOML"),
    ],
)
def test_a_bad_config_is_refused_with_a_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path)


def test_the_shipped_configs_load() -> None:
    for path in sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*.toml")):
        assert isinstance(load_config(path), RunConfig)
