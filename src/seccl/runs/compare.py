"""`seccl compare RUN RUN …`: runs (and baselines) side by side, in one plot and one markdown table.

A run is a directory ``seccl run`` wrote (metrics.json); a baseline one ``seccl baseline`` wrote
(baseline.json). The plot overlays every run's test accuracy (solid) and macro-F1 (dashed) per
round on a 0-1 axis, each baseline's final accuracy as a horizontal line, and, when a run had
adversaries, the adversaries elected per round on an axis of their own.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


class CompareError(Exception):
    """A path is not a run or baseline directory, or its records cannot be read."""


@dataclass
class Entry:
    """One run or baseline, as the comparison shows it."""

    label: str
    kind: str  # "run" or "baseline"
    path: Path
    config: dict[str, Any]
    rounds: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)  # after each round (runs: round 0 first)
    macro_f1: list[float] = field(default_factory=list)
    adversaries_elected: list[int] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CompareError(f"{path} cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CompareError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CompareError(f"{path} does not hold a JSON object")
    return data


def load_entry(path: Path) -> Entry:
    """The run or baseline at ``path`` (its directory, or its metrics.json / baseline.json)."""
    directory = path.parent if path.is_file() else path
    metrics, baseline = directory / "metrics.json", directory / "baseline.json"
    try:
        if metrics.is_file():
            data = _read(metrics)
            rows = data["rounds"]
            entry = Entry(directory.name, "run", directory, dict(data.get("config", {})), record=data)
            entry.rounds = [0] + [int(r["round"]) for r in rows]
            entry.accuracy = [float(data["initial_accuracy"])] + [float(r["accuracy"]) for r in rows]
            entry.macro_f1 = [float(r["macro_f1"]) for r in rows]
            if data.get("adversaries"):
                entry.adversaries_elected = [len(r.get("adversaries_elected", [])) for r in rows]
            return entry
        if baseline.is_file():
            data = _read(baseline)
            entry = Entry(directory.name, "baseline", directory, dict(data.get("config", {})), record=data)
            entry.accuracy = [float(a) for a in data["accuracy_per_epoch"]]
            entry.macro_f1 = [float(f) for f in data.get("macro_f1_per_epoch", [])]
            entry.rounds = list(range(1, len(entry.accuracy) + 1))
            return entry
    except (KeyError, TypeError, ValueError) as exc:
        raise CompareError(f"{directory}: its records lack a field or hold a wrong type ({exc!r})") from None
    raise CompareError(
        f"{path} is neither a run directory (with metrics.json) nor a baseline directory (with baseline.json)"
    )


def default_out(paths: list[Path]) -> Path:
    """runs/compare-<a>-vs-<b>…, shortened with a hash when the names are long."""
    names = "-vs-".join(p.resolve().name for p in paths)
    if len(names) > 80:
        names = f"{len(paths)}-runs-" + hashlib.sha256(names.encode()).hexdigest()[:8]
    return Path("runs") / f"compare-{names}"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _attack(config: dict[str, Any]) -> str:
    if not config.get("attack"):
        return "—"
    start = config.get("attack_start_round", 1)
    text = f"{config['attack']} e={config.get('attack_fraction', 0):g}"
    return text + (f" from round {start}" if start != 1 else "")


def table(entries: list[Entry]) -> str:
    """One markdown row per run or baseline."""
    lines = [
        "| run | N | rounds | l | attack | server attack | final accuracy | final macro-F1 | best accuracy "
        "| adversaries elected | evidence | s / round |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in entries:
        c = e.config
        if e.kind == "baseline":
            final_f1 = e.macro_f1[-1] if e.macro_f1 else None
            lines.append(
                f"| {e.label} (centralized baseline) | {c.get('participants', '—')} | "
                f"{len(e.accuracy)} epochs | — | — | — | {_fmt(e.accuracy[-1] if e.accuracy else None)} | "
                f"{_fmt(final_f1)} | {_fmt(max(e.accuracy) if e.accuracy else None)} | — | — | — |"
            )
            continue
        rows = e.record.get("rounds", [])
        slots = sum(len(r.get("elected", [])) for r in rows)
        elected = f"{sum(e.adversaries_elected)} of {slots}" if e.adversaries_elected else "—"
        seconds = sum(float(r.get("seconds", 0)) for r in rows) / len(rows) if rows else None
        lines.append(
            f"| {e.label} | {c.get('participants', '—')} | {len(rows)} | "
            f"{_fmt(c.get('candidate_fraction'), 2)} "
            f"| {_attack(c)} | {c.get('server_attack') or '—'} | {_fmt(e.accuracy[-1])} | "
            f"{_fmt(e.macro_f1[-1] if e.macro_f1 else None)} | {_fmt(max(e.accuracy[1:] or e.accuracy))} | "
            f"{elected} | {e.record.get('evidence', '—')} | {_fmt(seconds, 1)} |"
        )
    return "\n".join(lines) + "\n"


def plot(entries: list[Entry], path: Path) -> None:
    runs = [e for e in entries if e.kind == "run"]
    attacked = [e for e in runs if e.adversaries_elected]
    if attacked:
        fig, (ax, bottom) = plt.subplots(
            2, 1, figsize=(7, 5.6), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
    else:
        fig, ax = plt.subplots(figsize=(7, 4.4), dpi=110)
        bottom = None
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, e in enumerate(entries):
        color = colors[i % len(colors)]
        if e.kind == "baseline":
            ax.axhline(
                e.accuracy[-1],
                color=color,
                linestyle="-.",
                label=f"{e.label}: centralized, {len(e.accuracy)} epochs ({e.accuracy[-1]:.3f})",
            )
            continue
        ax.plot(e.rounds, e.accuracy, marker="o", color=color, label=f"{e.label}: accuracy")
        ax.plot(
            e.rounds[1:], e.macro_f1, marker="s", linestyle="--", color=color, label=f"{e.label}: macro-F1"
        )
        if bottom is not None and e.adversaries_elected:
            bottom.plot(e.rounds[1:], e.adversaries_elected, marker="^", color=color, label=e.label)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy (solid) / macro-F1 (dashed)", fontsize=8)
    ax.grid(alpha=0.3)
    # Lower left, clear of the curves: runs start low only at round 0 and fall, if ever, later on.
    ax.legend(loc="lower left", bbox_to_anchor=(0.06, 0.02), fontsize=7)
    ax.set_title("SecCL runs compared", fontsize=10)
    last = ax
    if bottom is not None:
        bottom.set_ylabel("adversaries\nelected", fontsize=8)
        top = max(int(e.record.get("candidates_per_round") or 1) for e in attacked)
        bottom.set_ylim(0, max(top, *(max(e.adversaries_elected) for e in attacked), 1))
        bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.grid(alpha=0.3)
        last = bottom
    last.set_xlabel("round")
    last.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def compare_runs(
    paths: list[Path], out: Path, plot_only: list[Path] | None = None
) -> tuple[dict[str, Path], str]:
    """Write compare.png and compare.md for ``paths`` into ``out``; returns the files and the table.
    ``plot_only``, when given, is the part of ``paths`` the plot shows (the table shows them all)."""
    entries = [load_entry(p) for p in paths]
    labels = [e.label for e in entries]
    for e in entries:
        if labels.count(e.label) > 1:  # the same name in two places: show the parent too
            e.label = f"{e.path.parent.name}/{e.path.name}"
    out.mkdir(parents=True, exist_ok=True)
    files = {"plot": out / "compare.png", "table": out / "compare.md"}
    text = table(entries)
    files["table"].write_text(text)
    shown = set(plot_only if plot_only is not None else paths)
    plot([e for e, p in zip(entries, paths, strict=True) if p in shown], files["plot"])
    return files, text


def plot_over_seeds(curves: dict[str, list[list[float]]], baselines: list[Entry], path: Path) -> None:
    """Test accuracy per round (round 0 first) of each setting: the mean over its seeds, with a
    band of ± one sample std; the baselines' final accuracy as a horizontal line (several
    baselines are the one baseline under several seeds: their mean, with its band)."""
    fig, ax = plt.subplots(figsize=(7, 4.4), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, runs) in enumerate(curves.items()):
        length = min(len(run) for run in runs)  # every seed's rounds so far
        columns = [[run[r] for run in runs] for r in range(length)]
        mean = [sum(c) / len(c) for c in columns]
        std = [statistics.stdev(c) if len(c) > 1 else 0.0 for c in columns]
        color = colors[i % len(colors)]
        ax.plot(range(length), mean, marker="o", color=color, label=f"{label} ({len(runs)} seeds)")
        low = [m - d for m, d in zip(mean, std, strict=True)]
        high = [m + d for m, d in zip(mean, std, strict=True)]
        ax.fill_between(range(length), low, high, color=color, alpha=0.2, linewidth=0)
    if baselines:
        color = colors[len(curves) % len(colors)]
        finals = [e.accuracy[-1] for e in baselines]
        centre = statistics.fmean(finals)
        name = re.sub(r"-seed\d+$", "", baselines[0].label)
        over = f", {len(finals)} seeds" if len(finals) > 1 else ""
        label = f"{name}: centralized, {len(baselines[0].accuracy)} epochs{over} ({centre:.3f})"
        ax.axhline(centre, color=color, linestyle="-.", label=label)
        if len(finals) > 1:
            spread = statistics.stdev(finals)
            ax.axhspan(centre - spread, centre + spread, color=color, alpha=0.15, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy: mean over seeds, ± 1 std", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.06, 0.02), fontsize=7)
    ax.set_title("SecCL runs over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
