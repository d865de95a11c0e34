"""`seccl compare RUN RUN …`: runs (and baselines) side by side, in one plot and one markdown table.

A run is a directory ``seccl run`` wrote (metrics.json); a baseline one ``seccl baseline`` wrote
(baseline.json). The plot overlays every run's test accuracy (solid) and macro-F1 (dashed) per
round on a 0-1 axis, each baseline's final accuracy as a horizontal line labelled with its epochs
(a baseline has no rounds), each attack's first round as a dotted line, and, when a run had
adversaries, the adversaries elected per round on an axis of their own; its title says what was
compared (data set, N, attacks), its legend sits below the axes.
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
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from seccl.runs.plots import ADVERSARY, clipped_band


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
    macro_f1: list[float] = field(default_factory=list)  # runs: round 0 first when it was measured
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
            if data.get("initial_macro_f1") is not None:
                entry.macro_f1.insert(0, float(data["initial_macro_f1"]))
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


def compare_warnings(paths: list[Path]) -> list[str]:
    """What makes the comparison of ``paths`` misleading, though it can be drawn: one run given
    twice (or two copies of one run's records), or runs of different N (their accuracies are
    not of one setting, and the table's N column is easy to miss)."""
    entries = [load_entry(p) for p in paths]
    warnings = []
    seen: dict[Path, Path] = {}
    for path, entry in zip(paths, entries, strict=True):
        where = entry.path.resolve()
        if where in seen:
            warnings.append(
                f"{seen[where]} and {path} are the same {entry.kind} ({where}): it is compared with itself"
            )
        else:
            seen[where] = path
    for i, a in enumerate(entries):
        for b in entries[i + 1 :]:
            if a.path.resolve() != b.path.resolve() and a.kind == b.kind and a.record == b.record:
                warnings.append(f"{a.path} and {b.path} hold identical records: copies of one {a.kind}")
    sizes = {str(e.path): e.config.get("participants") for e in entries if e.config.get("participants")}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{path}: N = {n}" for path, n in sizes.items())
        warnings.append(f"the runs have different numbers of participants ({listed}): not one setting")
    return warnings


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


def _backdoor(entry: Entry) -> float | None:
    """The backdoor success of a run's last round (triggered test digits classified as the
    target), None when it was not measured."""
    rows = entry.record.get("rounds", []) if entry.kind == "run" else []
    value = rows[-1].get("attack_success_rate") if rows else None
    return None if value is None else float(value)


def table(entries: list[Entry]) -> str:
    """One markdown row per run or baseline."""
    lines = [
        "| run | N | rounds | l | attack | server attack | final accuracy | final macro-F1 | best accuracy "
        "| backdoor success | adversaries elected | evidence | s / round |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in entries:
        c = e.config
        if e.kind == "baseline":
            final_f1 = e.macro_f1[-1] if e.macro_f1 else None
            lines.append(
                f"| {e.label} (centralized baseline) | {c.get('participants', '—')} | "
                f"{len(e.accuracy)} epochs | — | — | — | {_fmt(e.accuracy[-1] if e.accuracy else None)} | "
                f"{_fmt(final_f1)} | {_fmt(max(e.accuracy) if e.accuracy else None)} | — | — | — | — |"
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
            f"{_fmt(_backdoor(e))} | {elected} | {e.record.get('evidence', '—')} | {_fmt(seconds, 1)} |"
        )
    return "\n".join(lines) + "\n"


def _attack_words(config: dict[str, Any]) -> str:
    parts = [] if not config.get("attack") else [_attack(config)]
    if config.get("server_attack"):
        parts.append(f"server attack {config['server_attack']}")
    return " + ".join(parts) or "none"


def title(entries: list[Entry]) -> str:
    """What the plot compares: the data sets, the N, the attacks, how many runs and baselines."""
    configs = [e.config for e in entries]
    datasets = ", ".join(dict.fromkeys(str(c.get("dataset", "?")) for c in configs))
    sizes = sorted({int(c["participants"]) for c in configs if c.get("participants") is not None})
    runs = [e for e in entries if e.kind == "run"]
    baselines = len(entries) - len(runs)
    counted = f"{len(runs)} run{'' if len(runs) == 1 else 's'}"
    if baselines:
        counted += f", {baselines} centralized baseline{'' if baselines == 1 else 's'}"
    attacks = list(dict.fromkeys(_attack_words(e.config) for e in runs))
    n = f", N={', '.join(map(str, sizes))}" if sizes else ""
    named = f"attack{'s' if len(attacks) > 1 else ''}: {', '.join(attacks)}" if attacks else ""
    return f"{datasets}{n}: {counted}" + (f"\n{named}" if named else "")


def plot(entries: list[Entry], path: Path) -> None:
    runs = [e for e in entries if e.kind == "run"]
    attacked = [e for e in runs if e.adversaries_elected]
    layout: dict[str, Any] = {"figsize": (7.5, 5.2), "dpi": 110, "layout": "constrained"}
    if attacked:
        layout.update(figsize=(7.5, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        fig, (ax, bottom) = plt.subplots(2, 1, **layout)
    else:
        fig, ax = plt.subplots(**layout)
        bottom = None
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles: list[Any] = []
    starts: dict[int, str] = {}
    for i, e in enumerate(entries):
        color = colors[i % len(colors)]
        if e.kind == "baseline":
            # A baseline has epochs, not rounds: its final accuracy as a level, labelled with them.
            line = ax.axhline(
                e.accuracy[-1],
                color=color,
                linestyle="-.",
                label=f"{e.label}: centralized, {len(e.accuracy)} epochs ({e.accuracy[-1]:.3f})",
            )
            handles.append(line)
            continue
        (line,) = ax.plot(e.rounds, e.accuracy, marker="o", color=color, label=e.label)
        handles.append(line)
        ax.plot(
            e.rounds[len(e.rounds) - len(e.macro_f1) :], e.macro_f1, marker="s", linestyle="--", color=color
        )
        start = int(e.config.get("attack_start_round") or 1)
        if e.config.get("attack") and start <= e.rounds[-1]:
            starts.setdefault(start, color)
        if bottom is not None and e.adversaries_elected:
            bottom.plot(e.rounds[1:], e.adversaries_elected, marker="^", color=color, label=e.label)
    for start in starts:
        for axis in (ax, bottom):
            if axis is not None:
                axis.axvline(start - 0.5, color=ADVERSARY, linestyle=":", linewidth=1.3)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy (solid) / macro-F1 (dashed)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title(entries), fontsize=9)
    if runs:
        handles.append(Line2D([], [], color="black", marker="o", label="accuracy"))
        handles.append(Line2D([], [], color="black", marker="s", linestyle="--", label="macro-F1"))
    if starts:
        rounds = ", ".join(str(s) for s in sorted(starts))
        label = f"attack starts (round {rounds})"
        handles.append(Line2D([], [], color=ADVERSARY, linestyle=":", label=label))
    # Below the axes: it covers no curve, however many runs there are.
    fig.legend(handles=handles, loc="outside lower center", ncol=2 if len(handles) > 2 else 1, fontsize=7)
    last = ax
    if bottom is not None:
        bottom.set_ylabel("adversaries\nelected", fontsize=8)
        top = max(int(e.record.get("candidates_per_round") or 1) for e in attacked)
        bottom.set_ylim(0, max(top, *(max(e.adversaries_elected) for e in attacked), 1))
        bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.grid(alpha=0.3)
        if not any(any(e.adversaries_elected) for e in attacked):
            bottom.text(
                0.5, 0.5, "no adversary elected", transform=bottom.transAxes, ha="center", color="dimgrey"
            )
        last = bottom
    last.set_xlabel("round")
    last.xaxis.set_major_locator(MaxNLocator(integer=True))
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


def band_over_seeds(runs: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Per round, over the seeds' curves ``runs`` (every seed's rounds so far): the mean, and the
    band of ± one sample std clipped to [0, 1] (see :func:`seccl.runs.plots.clipped_band`)."""
    length = min(len(run) for run in runs)
    bands = [clipped_band([run[r] for run in runs]) for r in range(length)]
    return [b[0] for b in bands], [b[1] for b in bands], [b[2] for b in bands]


def plot_over_seeds(
    curves: dict[str, list[list[float]]], baselines: list[Entry], path: Path, heading: str | None = None
) -> None:
    """Test accuracy per round (round 0 first) of each setting: the mean over its seeds, with a
    band of ± one sample std within [0, 1]; the baselines' final accuracy as a horizontal line
    (several baselines are the one baseline under several seeds: their mean, with its band).
    ``heading`` says what was compared (default: "SecCL runs over seeds")."""
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, runs) in enumerate(curves.items()):
        mean, low, high = band_over_seeds(runs)
        length = len(mean)
        color = colors[i % len(colors)]
        ax.plot(range(length), mean, marker="o", color=color, label=f"{label} ({len(runs)} seeds)")
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
            _, bottom, top = clipped_band(finals)
            ax.axhspan(bottom, top, color=color, alpha=0.15, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy: mean over seeds, ± 1 std", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    # Below the axes, clear of the curves and their bands.
    fig.legend(loc="outside lower center", ncol=2 if len(curves) + bool(baselines) > 2 else 1, fontsize=7)
    ax.set_title(heading or "SecCL runs over seeds", fontsize=9)
    fig.savefig(path)
    plt.close(fig)
