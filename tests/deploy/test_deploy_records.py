"""A deployment's server, as its Flower ServerApp runs it (with DeploymentRecords), writes the
records a simulated run writes (config.toml, metrics.json, metrics.csv, chain.json, evidence.json,
the plots, TensorBoard events, models/round-NNNN.pt from round 0), in the same formats: the tools
that read a run read them (the comparison, `seccl evaluate`, `seccl audit`), and they hold the
simulated session's figures."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from seccl.deploy.server_run import DeployedServer, ServerConfig
from seccl.runs.audit import audit_path
from seccl.runs.compare import compare_runs, load_entry
from seccl.runs.config import ConfigError, load_config
from seccl.runs.deployment import DeploymentRecords
from seccl.runs.directory import resume_config
from seccl.runs.evaluate import evaluate_model, run_of
from seccl.runs.records import write_run
from seccl.runs.tensorboard import DIRECTORY, FILE_NAME, read_scalars
from tests.deploy.conftest import PER_PARTICIPANT, ROUNDS, N, saved_model, simulated_run
from tests.deploy.test_node import FreshProcessTransport

FIGURES = ("accuracy", "macro_f1", "elected", "scores", "borda_points", "abstentions", "ballots")


def header(path: Path) -> list[str]:
    with open(path, newline="") as handle:
        return next(csv.reader(handle))


def test_a_deployment_writes_a_simulated_runs_records_and_its_readers_read_them(
    consortium, tmp_path: Path
) -> None:
    root = consortium.root
    records = consortium.server_dir / "records"
    config = ServerConfig(
        session_file=root / "session.json",
        key_file=consortium.server_dir / "key.json",
        passphrase_file=consortium.server_dir / "passphrase",
        chain_url=consortium.anvil.url,
        out_dir=records,
        test_data=root / "data" / "test.npz",
        per_participant=PER_PARTICIPANT,
        candidate_fraction=consortium.candidate_fraction,
    )
    transport = FreshProcessTransport([consortium.node_config(i) for i in range(N)])
    DeployedServer(config, transport=transport, log=lambda _line: None, recorder=DeploymentRecords()).run()

    # The simulation of the same session, its records written by `seccl run`'s own writer.
    params, result = simulated_run(root)
    simulated = tmp_path / "simulated"
    settings = load_config(records / "config.toml")
    write_run(dataclasses.replace(settings, out_dir=str(simulated)), result, simulated, complete=True)

    # The same files, in the same formats.
    models = [f"models/round-{r:04d}.pt" for r in range(ROUNDS + 1)] + ["models/final.pt"]
    for name in ["metrics.json", "metrics.csv", "chain.json", "evidence.json", "config.toml", *models]:
        assert (records / name).is_file(), name
    for plot in ("accuracy.png", "elected.png", "scores.png", "loss.png"):
        assert (records / plot).stat().st_size > 0, plot
    assert not (records / "models" / "final.npy").exists()
    assert np.array_equal(saved_model(records / "models" / "final.pt"), params)
    assert header(records / "metrics.csv") == header(simulated / "metrics.csv")
    deployed_metrics = json.loads((records / "metrics.json").read_text())
    simulated_metrics = json.loads((simulated / "metrics.json").read_text())
    assert set(simulated_metrics) <= set(deployed_metrics)
    assert [set(r) for r in deployed_metrics["rounds"]] == [set(r) for r in simulated_metrics["rounds"]]
    deployed_chain = json.loads((records / "chain.json").read_text())
    assert set(deployed_chain) == set(json.loads((simulated / "chain.json").read_text()))
    assert [t["action"] for t in deployed_chain["transactions"]][: N + 3] == ["fund"] * (N + 1) + [
        "deploy BulletinBoard",
        "deploy Consensus",
    ]

    # The simulated session's figures: θ_0's, and every round's test scores, elections and ballots.
    for key in ("initial_accuracy", "initial_macro_f1", "final_accuracy", "final_macro_f1", "adversaries"):
        assert deployed_metrics[key] == simulated_metrics[key], key
    for deployed, expected in zip(deployed_metrics["rounds"], simulated_metrics["rounds"], strict=True):
        assert {k: deployed[k] for k in FIGURES} == {k: expected[k] for k in FIGURES}
        assert deployed["gas"] > 0 and deployed["transactions"] > 0  # every party's, from the chain
    assert deployed_metrics["evidence"] == 0 and "note" in json.loads((records / "evidence.json").read_text())

    # The readers of a run: the comparison, `seccl evaluate`, TensorBoard's events, `seccl audit`.
    deployed_entry, simulated_entry = load_entry(records), load_entry(simulated)
    assert deployed_entry.kind == "run" and deployed_entry.rounds == list(range(ROUNDS + 1))
    assert deployed_entry.accuracy == simulated_entry.accuracy
    assert deployed_entry.macro_f1 == simulated_entry.macro_f1
    _, table = compare_runs([records, simulated], tmp_path / "compare")
    assert table.count(f"| {N} | {ROUNDS} |") == 2
    model = records / "models" / f"round-{ROUNDS:04d}.pt"
    run = run_of(model)
    assert run is not None and (run.dataset, run.seed, run.participants) == ("mnist", 0, N)
    scored = evaluate_model(model, dataset=run.dataset, seed=run.seed)
    assert (scored.accuracy, scored.macro_f1) == (
        deployed_metrics["final_accuracy"],
        deployed_metrics["final_macro_f1"],
    )
    events = read_scalars(records / DIRECTORY / FILE_NAME)
    assert events["test/accuracy"] == read_scalars(simulated / DIRECTORY / FILE_NAME)["test/accuracy"]
    report = audit_path(records, url=consortium.anvil.url)
    lines = report.lines()
    assert report.ok and lines[-1] == "clean", "\n".join(lines)
    for section in ("chain.json", "config.toml", "metrics.json", "metrics.csv", "evidence.json", "run.json"):
        assert any(line.startswith(section) for line in lines), (section, lines)

    # And `seccl audit` checks them: a figure changed in metrics.json is caught.
    deployed_metrics["rounds"][0]["borda_points"][0] += 1
    (records / "metrics.json").write_text(json.dumps(deployed_metrics))
    tampered = audit_path(records, url=consortium.anvil.url)
    assert not tampered.ok
    assert any("round 1: the Borda points (borda_points)" in line for line in tampered.lines())
    # Nor does `seccl run --resume` mistake them for a simulated run's.
    with pytest.raises(ConfigError, match="a deployment server's records"):
        resume_config(records)
