"""Writes a run directory: config, per-round metrics (CSV, JSON), chain records, evidence, plot."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on these machines
import matplotlib.pyplot as plt

from seccl.experiments.config import RunConfig
from seccl.runtime.simulation import RunResult


def write_run(config: RunConfig, result: RunResult, run_dir: Path, **summary: Any) -> dict[str, Path]:
    """Write every record of a run into ``run_dir``; returns the files by name."""
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "config": run_dir / "config.toml",
        "metrics_csv": run_dir / "metrics.csv",
        "metrics_json": run_dir / "metrics.json",
        "chain": run_dir / "chain.json",
        "evidence": run_dir / "evidence.json",
        "plot": run_dir / "accuracy.png",
    }
    files["config"].write_text(config.to_toml())
    rows = [_row(r) for r in result.rounds]
    columns = list(rows[0]) if rows else []
    with files["metrics_csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    files["metrics_json"].write_text(
        json.dumps(
            {
                "initial_accuracy": result.initial_accuracy,
                "final_accuracy": result.final_accuracy,
                "rounds": rows,
                **summary,
            },
            indent=2,
        )
        + "\n"
    )
    files["chain"].write_text(
        json.dumps(
            {
                **result.chain,
                "transactions": [asdict(t) for t in result.transactions],
            },
            indent=2,
        )
        + "\n"
    )
    files["evidence"].write_text(
        json.dumps(
            {
                "evidence": [
                    {**e.to_dict(), "verdict": {"status": str(v.status), "reason": v.reason}}
                    for e, v in zip(result.evidence, result.verdicts, strict=True)
                ],
                "rejected_messages": [asdict(r) for r in result.rejections],
            },
            indent=2,
        )
        + "\n"
    )
    plot_accuracy(config, result, files["plot"])
    return files


def _row(record: Any) -> dict[str, Any]:
    row = asdict(record)
    row["candidates"] = " ".join(str(c) for c in record.candidates)
    extra = row.pop("extra")
    row.update(extra)
    row["seconds"] = round(row["seconds"], 3)
    return row


def plot_accuracy(config: RunConfig, result: RunResult, path: Path) -> None:
    rounds = [0] + [r.round for r in result.rounds]
    accuracy = [result.initial_accuracy] + [r.accuracy for r in result.rounds]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot(rounds, accuracy, marker="o", label="SecCL global model")
    for key in sorted({k for r in result.rounds for k in r.extra}):
        ax.plot(
            rounds[1:],
            [r.extra.get(key, float("nan")) for r in result.rounds],
            marker="x",
            linestyle="--",
            label=key,
        )
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_xticks(rounds)
    ax.grid(alpha=0.3)
    ax.set_title(
        f"{config.dataset}: N={config.participants}, l={config.candidate_fraction:g}, "
        f"s={config.share_fraction:g}, {config.local_epochs} local epochs",
        fontsize=10,
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
