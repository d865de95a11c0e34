"""The `seccl` command: the run directory it writes, its exit codes, its chain backends, baselines,
comparisons, progress lines, help and version."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from seccl.cli import options as cli_options
from seccl.cli.main import main
from seccl.election import MAX_SCORE
from seccl.runs.config import load_config
from seccl.runtime import simulation

SMALL = ["-r", "1", "--per-participant", "100", "--local-epochs", "1", "--no-progress"]
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def attack_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, Path]:
    """One label-flip run (N = 5, 2 rounds) beside a baseline of the same data: (exit, run, baseline)."""
    root = tmp_path_factory.mktemp("runs")
    baseline = root / "baseline"
    data = ["-n", "5", "--per-participant", "100"]
    assert main(["baseline", *data, "--epochs", "2", "--out", str(baseline)]) == 0
    out = root / "label-flip"
    attack = ["--attack", "label-flip", "-e", "0.4", "--out", str(out)]
    code = main(["run", *data, "-r", "2", "-l", "0.4", "--local-epochs", "1", "--no-progress", *attack])
    return code, out, baseline


def test_a_run_writes_its_config_metrics_chain_records_evidence_and_plot(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"

    assert main(["run", "-n", "3", *SMALL, "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "round  1/1" in printed and "evidence: none" in printed
    assert load_config(out / "config.toml").participants == 3
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["round"]) for r in rows] == [0, 1]  # round 0: θ_0, before any training
    assert 0.0 <= float(rows[1]["accuracy"]) <= 1.0 and int(rows[1]["gas"]) > 0
    assert float(rows[1]["time_training"]) > 0 and float(rows[1]["training_loss"]) > 0
    assert 0.0 <= float(rows[0]["macro_f1"]) <= 1.0 and rows[0]["gas"] == ""
    chain = json.loads((out / "chain.json").read_text())
    assert chain["backend"] == "anvil" and len(chain["participants"]) == 3  # the default chain
    assert (out / "anvil-state.json").is_file() and (out / "checkpoint.json").is_file()
    # Every transaction of the session, as the chain records it: funding, deployment, the round.
    actions = [t["action"] for t in chain["transactions"]]
    assert actions[:4] == ["fund"] * 4 and actions[4:6] == ["deploy BulletinBoard", "deploy Consensus"]
    assert actions.count("postUpdate") == 3 and actions.count("submitScores") == 3
    assert actions.count("tally") == 1 and actions.count("postModel") == 1
    assert {t["subject"] for t in chain["transactions"] if t["action"] == "postUpdate"} == set(
        chain["participants"]
    )
    assert all(t["status"] == "succeeded" for t in chain["transactions"])
    assert all(t["tx_id"].startswith("0x") and len(t["tx_id"]) == 66 for t in chain["transactions"])
    assert json.loads((out / "evidence.json").read_text()) == {"evidence": [], "rejected_messages": []}
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "metrics.json").read_text())["exit_code"] == 0


def test_metrics_json_holds_the_election_the_adversaries_the_time_split_and_the_data(
    attack_run: tuple[int, Path, Path],
) -> None:
    code, out, _ = attack_run
    metrics = json.loads((out / "metrics.json").read_text())
    n, m = 5, 2

    assert code == 0  # a participant attack leaves no evidence against the server here
    assert metrics["config"]["attack"] == "label-flip" and metrics["candidates_per_round"] == m
    adversaries = metrics["adversaries"]
    assert len(adversaries) == 2 and all(0 <= i < n for i in adversaries)
    assert [p["index"] for p in metrics["participants"] if p["adversary"]] == adversaries
    for p in metrics["participants"]:
        assert p["train_samples"] == 80 and p["validation_samples"] == 20
        assert sum(p["train_class_counts"]) == 80 and len(p["validation_class_counts"]) == 10
        assert p["address"].startswith("0x")
    for r in metrics["rounds"]:
        assert isinstance(r["elected"], list) and len(r["elected"]) == m
        assert r["adversaries"] == adversaries
        assert r["adversaries_elected"] == sorted(set(adversaries) & set(r["elected"]))
        scores = r["scores"]
        assert len(scores) == n and all(len(row) == n for row in scores)
        assert all(scores[i][i] is None for i in range(n))  # a voter never scores itself
        assert all(0 <= s <= MAX_SCORE for row in scores for s in row if s is not None)
        # Every ballot in, nobody abstains: each voter hands out m + (m-1) + ... + 1 points.
        assert sum(r["borda_points"]) == n * m * (m + 1) // 2 and r["abstentions"] == [0] * n
        assert set(r["time"]) == {"training", "evaluation", "chain", "other"}
        assert sum(r["time"].values()) == pytest.approx(r["seconds"], abs=0.01)
        assert r["time"]["training"] > 0 and r["time"]["chain"] > 0 and r["time"]["evaluation"] > 0
        losses = r["training_losses"]
        assert len(losses) == n and all(loss > 0 for loss in losses)
        assert r["training_loss"] == pytest.approx(np.mean(losses))
    assert metrics["baseline"]["epochs"] == 2  # the baseline beside it has the same data


def test_the_baseline_writes_f1_and_a_plot_into_a_directory_named_after_its_settings(
    attack_run: tuple[int, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, out = attack_run
    record = json.loads((out / "baseline.json").read_text())
    assert record["train_samples"] == 5 * 80  # 100 each, 20% kept for validation
    assert len(record["accuracy_per_epoch"]) == len(record["macro_f1_per_epoch"]) == 2
    assert record["final_macro_f1"] == record["macro_f1_per_epoch"][-1]
    assert (out / "baseline.png").read_bytes()[:4] == b"\x89PNG"

    monkeypatch.chdir(tmp_path)
    for epochs in ("1", "2"):
        assert main(["baseline", "-n", "3", "--per-participant", "40", "--epochs", epochs]) == 0
    made = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert made == ["mnist-n3-baseline-epochs1-pp40-seed0", "mnist-n3-baseline-epochs2-pp40-seed0"]


def test_a_run_that_finds_evidence_exits_1_unless_evidence_is_allowed(tmp_path: Path, capsys) -> None:
    attack = ["--server-attack", "tamper-all", "--attack-target", "0"]  # tampers with everyone's model

    assert main(["run", "-n", "3", *SMALL, *attack, "--out", str(tmp_path / "a")]) == 1
    captured = capsys.readouterr()
    # Every participant is handed an altered θ_0 in round 1 and an altered final model.
    assert "EVIDENCE: 6 findings" in captured.out and "model-mismatch" in captured.out
    assert "about the server" in captured.out
    assert "evidence was found" in captured.err and "--allow-evidence" in captured.err
    evidence = json.loads((tmp_path / "a" / "evidence.json").read_text())["evidence"]
    assert {e["kind"] for e in evidence} == {"model-mismatch"}
    assert {e["finder_index"] for e in evidence} == {0, 1, 2}

    assert main(["run", "-n", "3", *SMALL, *attack, "--allow-evidence", "--out", str(tmp_path / "b")]) == 0


def test_compare_overlays_runs_and_a_baseline_in_one_plot_and_one_table(
    attack_run: tuple[int, Path, Path], tmp_path: Path, capsys
) -> None:
    _, attacked, baseline = attack_run
    honest = tmp_path / "honest"
    assert main(["run", "-n", "5", "-l", "0.4", *SMALL, "--out", str(honest)]) == 0
    capsys.readouterr()
    out = tmp_path / "cmp"

    assert main(["compare", str(honest), str(attacked), str(baseline), "--out", str(out)]) == 0

    table = (out / "compare.md").read_text()
    assert capsys.readouterr().out.startswith(table)
    rows = [line for line in table.splitlines() if line.startswith("| ")][2:]
    assert len(rows) == 3
    assert rows[0].startswith("| honest |") and "label-flip e=0.4" in rows[1]
    assert "centralized baseline" in rows[2] and "2 epochs" in rows[2]
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_refuses_a_directory_that_is_no_run(tmp_path: Path, capsys) -> None:
    assert main(["compare", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seccl: compare: ") and "metrics.json" in err and "Traceback" not in err


def test_without_a_terminal_a_run_prints_phase_lines_and_estimates_the_round_time(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulation, "ESTIMATE_FROM", 3)  # the estimate is for N >= 64; shown at 4 here
    argv = ["run", "-n", "4", "-r", "1", "-l", "0.5", "--per-participant", "100", "--local-epochs", "1"]

    assert main([*argv, "--out", str(tmp_path / "run")]) == 0

    err = capsys.readouterr().err
    for phase in (
        "updates committed",
        "updates revealed",
        "ballots counted",
        "election tallied",
        "model posted and checked",
    ):
        assert re.search(rf"round 1/1: {phase} after \d+\.\d s", err), err
    assert re.search(r"estimate: about [\d.]+ s a round at N = 4", err), err


def test_a_run_on_a_dead_node_or_an_unreachable_url_says_so(capsys) -> None:
    assert main(["run", "-n", "3", *SMALL, "--chain", "http://127.0.0.1:1"]) == 2
    assert "no Ethereum JSON-RPC node answers at http://127.0.0.1:1" in capsys.readouterr().err


@pytest.mark.anvil
def test_a_run_on_a_local_anvil_node_it_starts_and_stops(tmp_path: Path, capsys) -> None:
    out = tmp_path / "anvil-run"

    assert main(["run", "-n", "3", *SMALL, "--chain", "anvil", "--out", str(out)]) == 0

    chain = json.loads((out / "chain.json").read_text())
    assert chain["backend"] == "anvil" and chain["chain_id"] == 31337
    assert (out / "anvil-state.json").exists()
    assert "evidence: none" in capsys.readouterr().out


@pytest.mark.anvil
def test_a_node_that_dies_mid_run_is_a_clear_error_exit_2(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seccl.chain.anvil import AnvilNode

    node = AnvilNode(tmp_path / "state.json").start()
    real = simulation.Simulation.run_round

    def dies_after_round_1(self: simulation.Simulation, r: int, send):  # type: ignore[no-untyped-def]
        if r == 2:
            node.stop()
        return real(self, r, send)

    monkeypatch.setattr(simulation.Simulation, "run_round", dies_after_round_1)
    try:
        assert main(["run", "-n", "3", *SMALL, "-r", "2", "--chain", node.url, "--chain-id", "31337"]) == 2
    finally:
        node.stop()
    err = capsys.readouterr().err
    assert f"chain (--chain): the node at {node.url} stopped answering during the run" in err
    assert "Traceback" not in err


def test_a_wrong_chain_id_is_refused_before_any_work(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from seccl.runs import launch as session

    answers = {"eth_chainId": "0x7a69", "eth_accounts": ["0x" + "11" * 20]}
    monkeypatch.setattr(session, "_rpc", lambda _url, method, timeout=5.0: answers[method])
    assert main(["run", *SMALL, "--chain", "http://node.example:8545", "--chain-id", "1"]) == 2
    err = capsys.readouterr().err
    assert "chain_id (--chain-id): the node at http://node.example:8545 reports chain id 31337" in err


def test_version_and_help(capsys) -> None:
    assert main(["--version"]) == 0
    assert re.fullmatch(r"seccl \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    assert "(default: 10)" in text and "--allow-evidence" in text


def test_every_option_has_help_and_a_default() -> None:
    options = cli_options.run_options()
    assert len(options) > 20
    for flags, meaning, default in options:
        assert meaning and default, flags


def test_the_readme_option_table_is_the_parsers() -> None:
    text = README.read_text()
    table = cli_options.options_markdown()
    assert table in text, (
        "README's option table differs from `seccl run --help`; replace it with the output of "
        "`python -c 'from seccl.cli.options import options_markdown as o; print(o())'`"
    )
    for flags, _, _ in cli_options.run_options():
        for flag in flags.split(", "):
            assert f"`{flag}`" in text


def test_nothing_in_the_repository_points_outside_it() -> None:
    root = README.parent
    files = [README, *root.joinpath("src").rglob("*.py"), *root.joinpath("tests").rglob("*.py")]
    for path in files:
        if path == Path(__file__):
            continue
        text = path.read_text()
        assert "../shared" not in text and "DESIGN.md" not in text, path


def test_a_run_never_overwrites_an_earlier_run(tmp_path: Path, monkeypatch, capsys) -> None:
    from seccl.cli.main import main

    monkeypatch.chdir(tmp_path)
    argv = [
        "run",
        "-n",
        "4",
        "-r",
        "1",
        "-l",
        "0.5",
        "--local-epochs",
        "1",
        "--per-participant",
        "100",
        "--no-progress",
    ]
    assert main(argv) == 0
    first = [p for p in (tmp_path / "runs").iterdir()]
    assert len(first) == 1
    assert main(argv) == 0  # the default name is taken: a fresh, time-stamped directory
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2 and runs[1].startswith(runs[0] + "-")
    capsys.readouterr()

    assert main([*argv, "--out", str(first[0])]) == 2  # an explicit --out holding a run: refused
    assert "already holds a run" in capsys.readouterr().err


def test_each_round_is_on_disk_as_it_ends_and_the_run_says_whether_it_completed(
    tmp_path: Path, monkeypatch
) -> None:
    from seccl.cli.main import main
    from seccl.runs import records

    seen: list[dict] = []
    write_run = records.write_run

    def spy(config, result, run_dir, **summary):  # type: ignore[no-untyped-def]
        files = write_run(config, result, run_dir, **summary)
        seen.append(json.loads((run_dir / "run.json").read_text()))
        return files

    monkeypatch.setattr(records, "write_run", spy)
    run = tmp_path / "run"
    argv = [
        "run",
        "-n",
        "4",
        "-r",
        "2",
        "-l",
        "0.5",
        "--local-epochs",
        "1",
        "--per-participant",
        "100",
        "--out",
        str(run),
        "--no-progress",
    ]

    assert main(argv) == 0

    # Complete only once the run has ended (the final model handed out and checked), not when
    # the last round's records are written.
    assert [(s["rounds_completed"], s["complete"]) for s in seen] == [(1, False), (2, False), (2, True)]
    assert seen[0]["resume"] == f"seccl run --resume {run}" and seen[-1]["resume"] is None
    assert seen[0]["files"]["messages.sqlite"] and seen[-1]["versions"]["torch"].startswith("2.13")
    assert sorted(p.name for p in (run / "models").iterdir()) == [
        "final.pt",
        "round-0000.pt",
        "round-0001.pt",
        "round-0002.pt",
    ]
