"""The pictures of a run directory: accuracy.png (test accuracy, macro-F1 and any attack figure
per round, round 0 included), elected.png (who was elected each round), scores.png (the last
round's score matrix and its Borda totals) and loss.png (the training loss per round); and the
band of a mean ± std curve, kept within [0, 1] like every score these plots draw.

elected.png, scores.png and loss.png are drawn from the rows metrics.json holds (see
:func:`seccl.runs.records.json_row`), so they can be drawn again from that file alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on these machines
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from seccl.election import MAX_SCORE
from seccl.runs.config import RunConfig
from seccl.runtime.results import RunResult

ADVERSARY = "tab:red"
ELECTED = "tab:blue"
EXTRA_LABELS = {"attack_success_rate": "backdoor success"}
"""How the per-round figures of an attack (RoundRecord.extra) are named in the plots."""


def clipped_band(values: Sequence[float]) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` ± one sample std (none for a single value),
    the band clipped to [0, 1], the range of every accuracy and rate."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, max(0.0, mean - std), min(1.0, mean + std)


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


def run_title(config: RunConfig, candidates: int, adversaries: int | None = None) -> str:
    """Two lines: the session's settings, and its attacks."""
    epochs = f"{config.local_epochs} local epoch{'' if config.local_epochs == 1 else 's'}"
    return (
        f"{config.dataset}: N={config.participants}, {config.elected_label(candidates)} "
        f"(l={config.candidate_fraction:g}), "
        f"s={config.share_fraction:g}, {epochs}\n{attack_title(config, adversaries)}"
    )


def attack_start(config: RunConfig, last_round: int) -> int | None:
    """The first round of a participant attack, if the run has reached it."""
    if config.attack and config.attack_start_round <= last_round:
        return int(config.attack_start_round)
    return None


def _mark_attack(ax: Axes, start: int | None, *, label: bool = True) -> None:
    """A dotted line where the attack begins: between the round before it and its first round."""
    if start is not None:
        ax.axvline(
            start - 0.5,
            color=ADVERSARY,
            linestyle=":",
            linewidth=1.3,
            label=f"attack starts (round {start})" if label else None,
        )


def _round_ticks(ax: Axes, rounds: Sequence[int]) -> None:
    if len(rounds) <= 20:
        ax.set_xticks(list(rounds))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _participant_ticks(ax: Axes, n: int, adversaries: set[int], axis: str = "y") -> None:
    """Every participant's index when there are few of them, the adversaries' in red."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    if n > 40:
        target.set_major_locator(MaxNLocator(integer=True))
        return
    target.set_ticks(range(n), [str(i) for i in range(n)], fontsize=7 if n > 20 else 8)
    for label in target.get_ticklabels():
        if int(label.get_text()) in adversaries:
            label.set_color(ADVERSARY)
            label.set_fontweight("bold")


def plot_accuracy(
    config: RunConfig,
    result: RunResult,
    path: Path,
    *,
    baseline: dict[str, Any] | None = None,
    initial_macro_f1: float | None = None,
) -> None:
    """Test accuracy and macro-F1 per round from round 0 (θ_0) on a 0-1 axis, with any attack
    figure (backdoor success), the centralized baseline when one exists, and the attack's first
    round marked; under an attack, the adversaries elected per round on an axis of their own."""
    if initial_macro_f1 is None:
        initial_macro_f1 = result.initial_macro_f1
    rounds = [0] + [r.round for r in result.rounds]
    accuracy = [result.initial_accuracy] + [r.accuracy for r in result.rounds]
    f1 = [r.macro_f1 for r in result.rounds]
    f1_rounds = rounds[1:]
    if initial_macro_f1 is not None:
        f1, f1_rounds = [initial_macro_f1, *f1], rounds
    adversaries = sorted({i for r in result.rounds for i in r.adversaries})
    layout: dict[str, Any] = {"figsize": (8.6, 4.2), "dpi": 110, "layout": "constrained"}
    if adversaries:
        layout.update(figsize=(8.6, 5.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        fig, (ax, bottom) = plt.subplots(2, 1, **layout)
    else:
        fig, ax = plt.subplots(**layout)
        bottom = None
    ax.plot(rounds, accuracy, marker="o", label="test accuracy")
    ax.plot(f1_rounds, f1, marker="s", linestyle="--", label="test macro-F1")
    extras = sorted({k for r in result.rounds for k in r.extra if k != "adversaries_elected"})
    names = ["accuracy", "macro-F1"]
    for key in extras:
        name = EXTRA_LABELS.get(key, key.replace("_", " "))
        names.append(name)
        values = [r.extra.get(key, float("nan")) for r in result.rounds]
        ax.plot(rounds[1:], values, marker="x", linestyle="-.", color="tab:purple", label=f"test {name}")
    if baseline is not None:
        ax.axhline(
            baseline["final_accuracy"],
            color="grey",
            linestyle="-.",
            label=f"centralized baseline, {baseline['epochs']} epochs ({baseline['final_accuracy']:.3f})",
        )
    start = attack_start(config, rounds[-1])
    _mark_attack(ax, start)
    ax.set_ylabel("test " + " / ".join(names), fontsize=8 if extras else 9)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    m = result.chain.get("candidates_per_round", config.candidates)
    ax.set_title(run_title(config, m, len(adversaries) if adversaries else None), fontsize=9)
    last = ax
    if bottom is not None:
        elected = [len(set(r.adversaries) & set(r.candidates)) for r in result.rounds]
        bottom.bar(rounds[1:], elected, color=ADVERSARY, width=0.6, label="adversaries elected")
        if not any(elected):
            bottom.text(
                0.5,
                0.5,
                "no adversary elected" + (" in any round" if len(elected) > 1 else ""),
                transform=bottom.transAxes,
                ha="center",
                va="center",
                fontsize=9,
                color="dimgrey",
            )
        _mark_attack(bottom, start, label=False)
        bottom.set_ylim(0, max(m, 1))
        bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.set_ylabel(f"adversaries\nelected (of {m})", fontsize=8)
        bottom.grid(alpha=0.3, axis="y")
        last = bottom
    last.set_xlabel("round")
    _round_ticks(last, rounds)
    ax.set_xlim(-0.5, rounds[-1] + 0.5)
    # Beside the axes, never over a curve.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    fig.savefig(path)
    plt.close(fig)


def plot_elected(config: RunConfig, metrics: dict[str, Any], path: Path) -> None:
    """Participants × rounds: who was elected in each round, the adversaries in red; beside it,
    how many rounds each participant was elected in."""
    rows = metrics["rounds"]
    n = len(metrics.get("participants") or []) or config.participants
    m = metrics.get("candidates_per_round", config.candidates)
    adversaries = set(metrics.get("adversaries") or [])
    rounds = [int(r["round"]) for r in rows]
    grid = np.zeros((n, len(rows)))
    for j, row in enumerate(rows):
        for i in row["elected"]:
            grid[i, j] = 1
    elected_count = grid.sum(axis=1)
    for i in adversaries:
        grid[i] += 2
    height = min(12.0, max(3.4, 0.22 * n + 1.8))
    width = min(14.0, max(7.0, 0.25 * len(rows) + 4.0))
    fig, (ax, side) = plt.subplots(
        1,
        2,
        figsize=(width, height),
        dpi=110,
        sharey=True,
        layout="constrained",
        gridspec_kw={"width_ratios": [5, 1]},
    )
    colors = ListedColormap(["white", ELECTED, "#f6d2d2", ADVERSARY])
    ax.imshow(
        grid,
        cmap=colors,
        vmin=-0.5,
        vmax=3.5,
        aspect="auto",
        interpolation="nearest",
        extent=(rounds[0] - 0.5, rounds[-1] + 0.5, n - 0.5, -0.5),
    )
    if n <= 60 and len(rows) <= 60:  # cell borders, while cells are large enough to show them
        ax.set_xticks([r + 0.5 for r in rounds[:-1]], minor=True)
        ax.set_yticks([i + 0.5 for i in range(n - 1)], minor=True)
        ax.grid(which="minor", color="#bbbbbb", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
    _mark_attack(ax, attack_start(config, rounds[-1]), label=False)
    _round_ticks(ax, rounds)
    _participant_ticks(ax, n, adversaries)
    ax.set_xlabel("round")
    ax.set_ylabel("participant")
    side.barh(range(n), elected_count, color=[ADVERSARY if i in adversaries else ELECTED for i in range(n)])
    side.set_xlim(0, max(len(rows), 1))
    side.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    side.set_xlabel("rounds elected", fontsize=8)
    side.grid(alpha=0.3, axis="x")
    handles = [
        Patch(facecolor=ELECTED, label="elected"),
        Patch(facecolor="white", edgecolor="#999999", label="not elected"),
    ]
    if adversaries:
        handles += [
            Patch(facecolor=ADVERSARY, label="adversary, elected"),
            Patch(facecolor="#f6d2d2", label="adversary, not elected"),
        ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(
        f"who was elected: {config.elected_label(m)} of N={n} each round\n"
        f"{attack_title(config, len(adversaries) or None)}",
        fontsize=9,
    )
    fig.savefig(path)
    plt.close(fig)


def plot_scores(config: RunConfig, metrics: dict[str, Any], path: Path) -> None:
    """The last round's score matrix as the consensus contract counted it (voter × participant
    scored, in macro-F1; grey: an abstention, or no ballot counted), and below it each
    participant's Borda total, the elected ones in blue and the adversaries hatched."""
    row = metrics["rounds"][-1]
    r = int(row["round"])
    scores = row["scores"]
    n = len(scores)
    adversaries = set(metrics.get("adversaries") or [])
    elected = set(row["elected"])
    matrix = np.full((n, n), np.nan)
    silent = []
    for i, ballot in enumerate(scores):
        if ballot is None:
            silent.append(i)
            continue
        for j, score in enumerate(ballot):
            if score is not None:
                matrix[i, j] = score / MAX_SCORE
    side = min(11.0, max(5.0, 0.2 * n + 3.5))
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(side + 1.2, side + 1.0),
        dpi=110,
        sharex=True,
        layout="constrained",
        gridspec_kw={"height_ratios": [3, 1.1]},
    )
    palette = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    image = top.imshow(matrix, cmap=palette, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    if n <= 10:
        for i in range(n):
            for j in range(n):
                if not np.isnan(matrix[i, j]):
                    value = matrix[i, j]
                    color = "black" if value > 0.6 else "white"
                    top.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    for i in silent:
        top.text((n - 1) / 2, i, "no ballot counted", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=[top, bottom], shrink=0.6, label="score: macro-F1 on the voter's validation set")
    _participant_ticks(top, n, adversaries)
    top.set_ylabel("voter")
    fig.suptitle(
        f"round {r}: the scores the consensus contract counted (grey: abstained) and the Borda "
        f"totals\n{run_title(config, len(elected), len(adversaries) or None)}",
        fontsize=9,
    )
    points = row.get("borda_points") or [0] * n
    bars = bottom.bar(
        range(n),
        points,
        color=[ELECTED if j in elected else "#bbbbbb" for j in range(n)],
        edgecolor=[ADVERSARY if j in adversaries else "none" for j in range(n)],
        linewidth=1.2,
    )
    for j, bar in enumerate(bars):
        if j in adversaries:
            bar.set_hatch("///")
    bottom.set_ylabel("Borda points", fontsize=8)
    bottom.grid(alpha=0.3, axis="y")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    _participant_ticks(bottom, n, adversaries, axis="x")
    bottom.set_xlabel("participant scored")
    handles = [Patch(facecolor=ELECTED, label="elected"), Patch(facecolor="#bbbbbb", label="not elected")]
    if adversaries:
        handles.append(Patch(facecolor="white", edgecolor=ADVERSARY, hatch="///", label="adversary"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.savefig(path)
    plt.close(fig)


def plot_loss(config: RunConfig, metrics: dict[str, Any], path: Path) -> None:
    """The mean training loss per round (over the participants that trained, on their last local
    epoch), and each participant's own loss faintly, the adversaries' in red."""
    rows = metrics["rounds"]
    rounds = [int(r["round"]) for r in rows]
    n = max([len(r.get("training_losses") or []) for r in rows] + [0])
    adversaries = set(metrics.get("adversaries") or [])
    losses = np.full((len(rows), n), np.nan)
    for k, row in enumerate(rows):
        for i, loss in enumerate(row.get("training_losses") or []):
            if loss is not None:
                losses[k, i] = loss
    fig, ax = plt.subplots(figsize=(8.6, 4.2), dpi=110, layout="constrained")
    for i in range(n):
        ax.plot(
            rounds,
            losses[:, i],
            color=ADVERSARY if i in adversaries else "grey",
            alpha=0.35,
            linewidth=0.8,
            marker="." if len(rounds) == 1 else None,
            label=("each adversary" if i in adversaries else "each honest participant")
            if i == min([j for j in range(n) if (j in adversaries) == (i in adversaries)])
            else None,
        )
    mean = [np.nan if r.get("training_loss") is None else r["training_loss"] for r in rows]
    ax.plot(rounds, mean, color="black", marker="o", linewidth=2, label="mean over those that trained")
    if np.isnan(losses).all() and all(np.isnan(mean)):
        ax.text(0.5, 0.5, "no training loss recorded", transform=ax.transAxes, ha="center", va="center")
    _mark_attack(ax, attack_start(config, rounds[-1]))
    highest = np.nanmax([*losses.ravel(), *mean, 0.0])
    ax.set_ylim(0, 1.08 * highest if highest > 0 else 1)
    ax.set_xlim(rounds[0] - 0.6, rounds[-1] + 0.5)
    ax.set_xlabel("round")
    ax.set_ylabel("training loss (mean over the last local epoch)", fontsize=8)
    _round_ticks(ax, rounds)
    ax.grid(alpha=0.3)
    m = metrics.get("candidates_per_round", config.candidates)
    ax.set_title(run_title(config, m, len(adversaries) or None), fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    fig.savefig(path)
    plt.close(fig)


def plot_rounds(config: RunConfig, metrics: dict[str, Any], run_dir: Path) -> dict[str, Path]:
    """elected.png, scores.png and loss.png into ``run_dir`` from the metrics.json document
    ``metrics`` (none before a round has finished); returns the files by name."""
    if not metrics.get("rounds"):
        return {}
    files = {name: run_dir / f"{name}.png" for name in ("elected", "scores", "loss")}
    plot_elected(config, metrics, files["elected"])
    plot_scores(config, metrics, files["scores"])
    plot_loss(config, metrics, files["loss"])
    return files
