"""Writes a run directory (config, per-round metrics in CSV and JSON, chain records, evidence,
plot) and a baseline directory (baseline.json, baseline.png).

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
from seccl.runtime.results import RoundRecord, RunResult
from seccl.runtime.timing import TIME_PARTS

SCORES_NOTE = (
    "scores[i][j]: voter i's score of participant j as the consensus contract counted it, in parts "
    "per million of macro-F1 on i's validation set; null: i abstained on j (itself, or an update "
    "it could not verify); a null row: no ballot of i was counted"
)


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
    rows = [csv_row(r) for r in result.rounds]
    columns = list(rows[0]) if rows else ["round"]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(files["metrics_csv"], table.getvalue().encode())
    adversaries = sorted({i for r in result.rounds for i in r.adversaries})
    if not adversaries:
        adversaries = [p["index"] for p in result.participants if p.get("adversary")]
    baseline = find_baseline(config, run_dir)
    _write_json(
        files["metrics_json"],
        {
            "config": config.to_dict(),
            "candidates_per_round": result.chain.get("candidates_per_round", config.candidates),
            "adversaries": adversaries,
            "initial_accuracy": result.initial_accuracy,
            "final_accuracy": result.final_accuracy,
            "final_macro_f1": result.rounds[-1].macro_f1 if result.rounds else None,
            "evidence": len(result.evidence),
            "baseline": None
            if baseline is None
            else {
                k: baseline[k]
                for k in ("path", "epochs", "final_accuracy", "final_macro_f1")
                if k in baseline
            },
            **summary,
            "participants": result.participants,
            "scores_note": SCORES_NOTE,
            "rounds": [json_row(r) for r in result.rounds],
        },
    )
    # Every transaction as the chain itself records it (funding, deployment, the participants' own
    # posts, reverted ones), not only what the server says it sent.
    chain = {**result.chain, "transactions": [asdict(t) for t in result.ledger]}
    state = run_dir / "anvil-state.json"
    if state.is_file():  # written by anvil as it stopped: pinned, so an edit is noticed
        chain["state_file_sha256"] = hashlib.sha256(state.read_bytes()).hexdigest()
    _write_json(files["chain"], chain)
    _write_json(
        files["evidence"],
        {
            "evidence": [
                {**e.to_dict(), "verdict": {"status": str(v.status), "reason": v.reason}}
                for e, v in zip(result.evidence, result.verdicts, strict=True)
            ],
            "rejected_messages": [asdict(r) for r in result.rejections],
        },
    )
    plot_accuracy(config, result, files["plot"], baseline=baseline)
    files["run"] = run_dir / "run.json"
    _write_json(files["run"], run_description(config, result, complete=complete))
    return files


RUN_FILES = {
    "run.json": "this file: what the run is, whether it completed, and what made it",
    "config.toml": "the run's settings; `seccl run --config` loads them back",
    "metrics.csv": "the scalar figures per round",
    "metrics.json": "per round: accuracy, F1, the counted score matrix, Borda totals, times, losses",
    "chain.json": "the contracts, the session's public facts, every Tx-ID with its gas, the block hashes",
    "evidence.json": "every finding with its signed proof and verdict, every refused message",
    "messages.sqlite": "every signed message and model by digest, with its Tx-ID (seccl audit reads it)",
    "models/": "each round's global model as a PyTorch state_dict (round-NNNN.pt, final.pt)",
    "accuracy.png": "accuracy and macro-F1 per round",
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
        "machine": {"host": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count()},
    }


def _write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


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


# ─────────────────────────────── plots ───────────────────────────────


def attack_title(config: RunConfig, adversaries: int | None = None) -> str:
    """The attacks of a run in words, for plot titles and tables."""
    parts = []
    if config.attack:
        who = "round(e·N) adversaries"
        if adversaries is not None:
            who = f"{adversaries} adversar{'y' if adversaries == 1 else 'ies'}"
        parts.append(
            f"attack {config.attack}, e={config.attack_fraction:g} "
            f"({who} from round {config.attack_start_round})"
        )
    if config.server_attack:
        target = "" if "attack_target" in config.inert() else f" on participant {config.attack_target}"
        parts.append(f"server attack {config.server_attack}{target}")
    return "; ".join(parts) or "no attack"


def plot_accuracy(
    config: RunConfig, result: RunResult, path: Path, *, baseline: dict[str, Any] | None = None
) -> None:
    """Test accuracy and macro-F1 per round on a 0-1 axis (with the centralized baseline when one
    exists), and, under an attack, the adversaries elected per round on an axis of their own."""
    rounds = [0] + [r.round for r in result.rounds]
    accuracy = [result.initial_accuracy] + [r.accuracy for r in result.rounds]
    adversaries = sorted({i for r in result.rounds for i in r.adversaries})
    if adversaries:
        fig, (ax, bottom) = plt.subplots(
            2, 1, figsize=(6.4, 5.4), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        bottom = None
    ax.plot(rounds, accuracy, marker="o", label="test accuracy")
    ax.plot(
        rounds[1:], [r.macro_f1 for r in result.rounds], marker="s", linestyle="--", label="test macro-F1"
    )
    for key in sorted({k for r in result.rounds for k in r.extra if k != "adversaries_elected"}):
        ax.plot(
            rounds[1:],
            [r.extra.get(key, float("nan")) for r in result.rounds],
            marker="x",
            linestyle=":",
            label=key.replace("_", " "),
        )
    if baseline is not None:
        ax.axhline(
            baseline["final_accuracy"],
            color="grey",
            linestyle="-.",
            label=f"centralized baseline, {baseline['epochs']} epochs ({baseline['final_accuracy']:.3f})",
        )
    ax.set_ylabel("accuracy / macro-F1")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    m = result.chain.get("candidates_per_round", config.candidates)
    ax.set_title(
        f"{config.dataset}: N={config.participants}, M={m} (l={config.candidate_fraction:g}), "
        f"s={config.share_fraction:g}, {config.local_epochs} local epochs\n"
        f"{attack_title(config, len(adversaries) if adversaries else None)}",
        fontsize=9,
    )
    last = ax
    if bottom is not None:
        elected = [len(set(r.adversaries) & set(r.candidates)) for r in result.rounds]
        bottom.bar(rounds[1:], elected, color="tab:red", width=0.6, label="adversaries elected")
        bottom.set_ylim(0, max(m, 1))
        bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.set_ylabel(f"adversaries\nelected (of {m})", fontsize=8)
        bottom.grid(alpha=0.3, axis="y")
        last = bottom
    last.set_xlabel("round")
    last.set_xticks(rounds)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
