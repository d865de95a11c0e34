"""Writes a run directory (config, per-round metrics in CSV and JSON, chain records, evidence,
plots, TensorBoard events) and a baseline directory (baseline.json, baseline.png).

metrics.json holds, per round and with JSON types: accuracy and macro-F1, the elected set, the
adversaries, the score matrix the consensus contract counted, its Borda points and abstentions,
the round time split into training, evaluation, chain and other, and the training loss; and per
participant, its address, its data size and class counts.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on these machines
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from seccl.files import atomic_write_bytes
from seccl.runs.config import RunConfig
from seccl.runs.plots import plot_accuracy, plot_rounds
from seccl.runs.tensorboard import write_events
from seccl.runtime.results import RoundRecord, RunResult
from seccl.runtime.timing import TIME_PARTS

SCORES_NOTE = (
    "scores[i][j]: voter i's score of participant j as the consensus contract counted it, in parts "
    "per million of macro-F1 on i's validation set; null: i abstained on j (itself, or an update "
    "it could not verify); a null row: no ballot of i was counted"
)


COST_NOTE = (
    "transactions and gas as the chain records them (chain.json's transactions, reverted ones "
    "included). A round's (metrics.csv, metrics.json's rounds, the round's line) counts every "
    "party's transactions of that round: the server's posts, ballots relayed, tally and model, and "
    "the participants' own posts, ballots and accusations. rounds: their sum over the rounds; "
    "session: every transaction of the session, with the funding and the deployment before round 1; "
    "server_sent: the ones the server sent itself in the rounds, by its own account"
)


def chain_cost(result: RunResult) -> dict[str, Any]:
    """The run's transactions and gas, each total saying what it counts (:data:`COST_NOTE`):
    ``rounds`` is the sum of the rounds' own counts, so the summary and the rounds agree."""
    server_gas = sum(t.gas for t in result.transactions)
    return {
        "rounds": {
            "transactions": sum(r.transactions for r in result.rounds),
            "gas": sum(r.gas for r in result.rounds),
        },
        "session": {"transactions": len(result.ledger), "gas": sum(e.gas for e in result.ledger)},
        "server_sent": {"transactions": len(result.transactions), "gas": server_gas},
        "note": COST_NOTE,
    }


def write_run_start(config: RunConfig, run_dir: Path) -> None:
    """Before any work: the settings, and a run.json that says the run is incomplete, so that a run
    killed in its first round is a run directory `seccl run --resume` recognises."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / "config.toml", config.to_toml().encode())
    _write_json(run_dir / "run.json", run_description(config, None))


def write_run(
    config: RunConfig, result: RunResult, run_dir: Path, *, complete: bool = False, **summary: Any
) -> dict[str, Path]:
    """Write every record of a run into ``run_dir``; returns the files by name. ``complete`` says
    that the run has ended (every round done, or the session stopped), not just a round."""
    files = write_records(config, result, run_dir, **summary)
    files["run"] = run_dir / "run.json"
    _write_json(files["run"], run_description(config, result, complete=complete))
    return files


def write_records(
    config: RunConfig,
    result: RunResult,
    run_dir: Path,
    *,
    evidence_note: str | None = None,
    **summary: Any,
) -> dict[str, Path]:
    """Every record of a run but run.json: config.toml, metrics.csv and metrics.json, chain.json,
    evidence.json, the plots and the TensorBoard events; returns the files by name. A simulated run
    and a deployment's server (:mod:`seccl.runs.deployment`) write them with this one function.
    ``summary`` goes into metrics.json as it is; ``evidence_note``, when given, into evidence.json
    (a deployment's server says there where the participants' findings are)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "config": run_dir / "config.toml",
        "metrics_csv": run_dir / "metrics.csv",
        "metrics_json": run_dir / "metrics.json",
        "chain": run_dir / "chain.json",
        "evidence": run_dir / "evidence.json",
        "plot": run_dir / "accuracy.png",
    }
    atomic_write_bytes(files["config"], config.to_toml().encode())
    initial_macro_f1 = result.initial_macro_f1
    if initial_macro_f1 is None:  # a resumed run: measured before the crash, kept in metrics.json
        initial_macro_f1 = _recorded(files["metrics_json"], "initial_macro_f1")
    rows = [csv_row(r) for r in result.rounds]
    columns = list(rows[0]) if rows else ["round", "accuracy", "macro_f1"]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerow(initial_csv_row(result.initial_accuracy, initial_macro_f1, columns))
    writer.writerows(rows)
    atomic_write_bytes(files["metrics_csv"], table.getvalue().encode())
    adversaries = sorted({i for r in result.rounds for i in r.adversaries})
    if not adversaries:
        adversaries = [p["index"] for p in result.participants if p.get("adversary")]
    baseline = find_baseline(config, run_dir)
    metrics = {
        "config": config.to_dict(),
        "candidates_per_round": result.chain.get("candidates_per_round", config.candidates),
        "adversaries": adversaries,
        "initial_accuracy": result.initial_accuracy,
        "initial_macro_f1": initial_macro_f1,
        "final_accuracy": result.final_accuracy,
        "final_macro_f1": result.rounds[-1].macro_f1 if result.rounds else None,
        "evidence": len(result.evidence),
        "baseline": None
        if baseline is None
        else {
            k: baseline[k] for k in ("path", "epochs", "final_accuracy", "final_macro_f1") if k in baseline
        },
        **summary,
        "participants": result.participants,
        "scores_note": SCORES_NOTE,
        "chain_cost": chain_cost(result),
        # A run repeats bit for bit on the same CPU only (float kernels differ across CPUs).
        "machine": machine(),
        "rounds": [json_row(r) for r in result.rounds],
    }
    _write_json(files["metrics_json"], metrics)
    # Every transaction as the chain itself records it (funding, deployment, the participants' own
    # posts, reverted ones), not only what the server says it sent.
    chain = {**result.chain, "transactions": [asdict(t) for t in result.ledger]}
    state = run_dir / "anvil-state.json"
    if state.is_file():  # written by anvil as it stopped: pinned, so an edit is noticed
        chain["state_file_sha256"] = hashlib.sha256(state.read_bytes()).hexdigest()
    _write_json(files["chain"], chain)
    found: dict[str, Any] = {
        "evidence": [
            {**e.to_dict(), "verdict": {"status": str(v.status), "reason": v.reason}}
            for e, v in zip(result.evidence, result.verdicts, strict=True)
        ],
        "rejected_messages": [asdict(r) for r in result.rejections],
    }
    if evidence_note is not None:
        found["note"] = evidence_note
    _write_json(files["evidence"], found)
    plot_accuracy(config, result, files["plot"], baseline=baseline, initial_macro_f1=initial_macro_f1)
    files.update(plot_rounds(config, metrics, run_dir))
    files["tensorboard"] = write_events(run_dir, result, initial_macro_f1)
    return files


RUN_FILES = {
    "run.json": "this file: what the run is, whether it completed, and what made it",
    "config.toml": "the run's settings; `seccl run --config` loads them back",
    "metrics.csv": "the scalar figures per round (round 0: θ_0's accuracy and macro-F1)",
    "metrics.json": "per round: accuracy, F1, the counted score matrix, Borda totals, times, losses",
    "chain.json": "the contracts, the session's public facts, every Tx-ID with its gas, the block hashes",
    "evidence.json": "every finding with its signed proof and verdict, every refused message",
    "messages.sqlite": "every signed message and model by digest, with its Tx-ID (seccl audit reads it)",
    "models/": "each round's global model as a PyTorch state_dict (round-NNNN.pt, final.pt)",
    "accuracy.png": "accuracy and macro-F1 per round (and backdoor success, adversaries elected)",
    "elected.png": "who was elected in each round, the adversaries marked",
    "scores.png": "the last round's score matrix as counted, and its Borda totals",
    "loss.png": "the mean training loss per round, and each participant's",
    "tensorboard/": "the per-round figures as TensorBoard events (`tensorboard --logdir runs/`)",
    "anvil-state.log": "with --chain anvil: the anvil node's own output (every JSON-RPC method "
    "called, every transaction mined), to read when anvil fails; nothing reads it back",
    "anvil-state.json": "with --chain anvil (the default): the chain itself, saved at every round's end "
    "(seccl audit reopens it; `anvil --load-state` serves it to cast or any web3 client)",
    "keys/": "every party's key as an encrypted V3 keystore, and the passphrase unless "
    "SECCL_KEYS_PASSPHRASE was set: secret, private to the run's owner",
    "checkpoint.json": "the state at the end of the last finished round: what --resume continues from",
    "checkpoint-NNNN.npz": "the parameter vectors that checkpoint.json names",
}


def run_description(config: RunConfig, result: RunResult | None, *, complete: bool = False) -> dict[str, Any]:
    """What a run directory holds and how it was made: files, versions, command, machine."""
    from importlib.metadata import version

    from seccl.chain.artifacts import load_artifact

    return {
        "complete": complete,
        "resume": None if complete else f"seccl run --resume {config.run_dir}",
        "rounds_completed": len(result.rounds) if result is not None else 0,
        "rounds_planned": config.rounds,
        "written_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "seed": config.seed,
        "files": RUN_FILES,
        "versions": {
            "python": platform.python_version(),
            **{name: version(name) for name in ("seccl", "torch", "numpy", "web3", "py-evm", "eth-tester")},
            "solc": load_artifact("BulletinBoard").compiler.get("version"),
        },
        "machine": machine(),
    }


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux; else what the platform reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Where a run ran: host, platform, CPU count and model. A run repeats bit for bit on the
    same CPU model only, so every record names it."""
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
    }


def _write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def _recorded(path: Path, key: str) -> Any:
    """``key`` of the JSON object in ``path``, None if there is none (no file, not JSON)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get(key) if isinstance(data, dict) else None


def initial_csv_row(accuracy: float, macro_f1: float | None, columns: list[str]) -> dict[str, Any]:
    """Round 0 of metrics.csv: θ_0, before any training, on the test set; nothing else happened
    in it that a round's other columns count (they are left empty)."""
    row: dict[str, Any] = dict.fromkeys(columns)
    row.update(round=0, accuracy=accuracy, macro_f1=macro_f1)
    return row


def csv_row(record: RoundRecord) -> dict[str, Any]:
    """The round's scalar figures (metrics.csv): lists and matrices are in metrics.json."""
    row: dict[str, Any] = {
        "round": record.round,
        "accuracy": record.accuracy,
        "macro_f1": record.macro_f1,
        "elected": " ".join(str(c) for c in record.candidates),
        "seconds": round(record.seconds, 3),
    }
    for part in (*TIME_PARTS, "other"):
        row[f"time_{part}"] = record.times.get(part)
    row["training_loss"] = record.training_loss
    row.update(
        gas=record.gas,
        transactions=record.transactions,
        ballots=record.ballots,
        evidence=record.evidence,
        rejections=record.rejections,
    )
    row.update(_extra(record))
    return row


def _extra(record: RoundRecord) -> dict[str, Any]:
    return {k: int(v) if k == "adversaries_elected" else v for k, v in record.extra.items()}


def json_row(record: RoundRecord) -> dict[str, Any]:
    """The round as metrics.json holds it: lists as lists, the score matrix as rows of voters."""
    adversaries = list(record.adversaries)
    return {
        "round": record.round,
        "accuracy": record.accuracy,
        "macro_f1": record.macro_f1,
        "elected": list(record.candidates),
        "adversaries": adversaries,
        "adversaries_elected": sorted(set(adversaries) & set(record.candidates)),
        **{k: v for k, v in _extra(record).items() if k != "adversaries_elected"},
        "seconds": round(record.seconds, 3),
        "time": dict(record.times),
        "training_loss": record.training_loss,
        "training_losses": list(record.training_losses),
        "gas": record.gas,
        "transactions": record.transactions,
        "ballots": record.ballots,
        "evidence": record.evidence,
        "rejections": record.rejections,
        "borda_points": list(record.borda_points),
        "abstentions": list(record.abstentions),
        "scores": [None if row is None else list(row) for row in record.scores],
    }


# ─────────────────────────────── baselines ───────────────────────────────


def write_baseline(
    config: RunConfig, epochs: int, history: list[Any], *, train_samples: int, seconds: float, out: Path
) -> dict[str, Path]:
    """baseline.json (test accuracy, macro-F1 and training loss per epoch) and baseline.png."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"baseline": out / "baseline.json", "plot": out / "baseline.png"}
    _write_json(
        files["baseline"],
        {
            "config": {k: v for k, v in config.to_dict().items() if k in _BASELINE_KEYS},
            "data_key": config.data_key(),
            "epochs": epochs,
            "train_samples": train_samples,
            "accuracy_per_epoch": [h.accuracy for h in history],
            "macro_f1_per_epoch": [h.macro_f1 for h in history],
            "loss_per_epoch": [h.loss for h in history],
            "final_accuracy": history[-1].accuracy,
            "final_macro_f1": history[-1].macro_f1,
            "seconds": round(seconds, 3),
        },
    )
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    x = [h.epoch for h in history]
    ax.plot(x, [h.accuracy for h in history], marker="o", label="test accuracy")
    ax.plot(x, [h.macro_f1 for h in history], marker="s", linestyle="--", label="test macro-F1")
    ax.set(xlabel="epoch", ylabel="accuracy / macro-F1", ylim=(0, 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.set_title(
        f"centralized baseline: {config.dataset}, the union of N={config.participants} participants' "
        f"train parts ({train_samples} samples)\n{epochs} epochs, lr {config.learning_rate:g}, "
        f"batch {config.batch_size}, seed {config.seed}",
        fontsize=9,
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(files["plot"])
    plt.close(fig)
    return files


_BASELINE_KEYS = (
    "participants",
    "dataset",
    "data_root",
    "split",
    "alpha",
    "per_participant",
    "validation_fraction",
    "learning_rate",
    "batch_size",
    "seed",
    "out_dir",
)


def find_baseline(config: RunConfig, run_dir: Path) -> dict[str, Any] | None:
    """A baseline.json trained on the same data with the same SGD settings as ``config``, from
    the directories beside ``run_dir`` or under ``runs/``: the one with as many epochs as the run
    has rounds if there is one, else the one with the most epochs."""
    key = config.data_key()
    found: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for parent in (run_dir.parent, Path("runs")):
        if not parent.is_dir():
            continue
        for path in sorted(parent.glob("*/baseline.json")):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and record.get("data_key") == key:
                found.append({**record, "path": str(path)})
    if not found:
        return None
    same = [b for b in found if b.get("epochs") == config.rounds]
    return same[0] if same else max(found, key=lambda b: b.get("epochs", 0))
