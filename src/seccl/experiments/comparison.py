"""The comparison's report (``report = "methods"``): per group, final accuracy and backdoor success
per method and attack, mean ± std over the seeds finished so far, as CSV, markdown and PNG."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seccl.experiments.plan import Experiment, Headline, Places, PlannedRun, has_record
from seccl.files import atomic_write_bytes

FIELDS = [
    "run",
    "group",
    "method",
    "attack",
    "attack_fraction",
    "seed",
    "split",
    "final_accuracy",
    "final_macro_f1",
    "best_accuracy",
    "attack_success_rate",
    "adversaries_used",
    "slots",
    "honest_kept_out",
    "diverged_round",
    "seconds",
]


UNSELECTIVE = ("fedavg", "dssgd", "median", "trimmed-mean")
"""Rules in which every update takes part (the median and trimmed mean per coordinate): their
count of adversaries kept would say nothing."""


@dataclass(frozen=True)
class Outcome:
    """One finished run, as the comparison shows it."""

    run: str
    group: str
    method: str
    attack: str
    attack_fraction: float | None
    seed: int
    split: str
    final_accuracy: float
    final_macro_f1: float
    best_accuracy: float
    attack_success_rate: float | None
    adversaries_used: int  # adversaries' updates elected (SecCL) or kept by the rule, summed over rounds
    slots: int  # updates elected or kept, summed over rounds
    honest_kept_out: float | None  # honest updates a filtering rule kept out, mean per round
    diverged_round: int | None
    seconds: float
    rounds: tuple[dict[str, Any], ...]

    def row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FIELDS}


def outcome(run: PlannedRun, directory: Path) -> Outcome:
    """The outcome of the finished run ``run`` recorded in ``directory`` (SecCL or chain-free)."""
    data = json.loads((directory / "metrics.json").read_text())
    rows = data["rounds"]
    config = data["config"]
    kept_out: list[float] = []
    if "imported" in data:  # rebuilt from an earlier results.csv, which kept the totals only
        used, slots = int(data["adversaries_used"]), int(data["slots"])
        asr = rows[-1].get("attack_success_rate") if rows else None
    elif run.is_federated:
        used = sum(len(r["adversaries_kept"]) for r in rows)
        slots = sum(len(r["kept"]) for r in rows)
        asr = rows[-1]["extra"].get("attack_success_rate") if rows else None
        if run.method not in UNSELECTIVE:
            honest = int(config["participants"]) - len(data.get("adversaries") or [])
            kept_out = [honest - (len(r["kept"]) - len(r["adversaries_kept"])) for r in rows]
    else:
        used = sum(len(r.get("adversaries_elected", [])) for r in rows)
        slots = sum(len(r.get("elected", [])) for r in rows)
        asr = rows[-1].get("attack_success_rate") if rows else None
        # Recorded by a filtering election (gram-gate: dropped or rejected); Borda keeps everyone.
        kept_out = [float(r["honest_kept_out"]) for r in rows if "honest_kept_out" in r]
    accuracies = [float(r["accuracy"]) for r in rows] or [float(data["initial_accuracy"])]
    return Outcome(
        run=run.name,
        group=run.group,
        method=run.method,
        attack=config.get("attack") or "none",
        attack_fraction=config.get("attack_fraction") if config.get("attack") else None,
        seed=int(config["seed"]),
        split=str(config["split"]),
        final_accuracy=float(data["final_accuracy"]),
        final_macro_f1=float(data["final_macro_f1"]),
        best_accuracy=max(accuracies),
        attack_success_rate=None if asr is None else float(asr),
        adversaries_used=used,
        slots=slots,
        honest_kept_out=statistics.fmean(kept_out) if kept_out else None,
        diverged_round=data.get("diverged_round"),
        seconds=float(data.get("seconds") or sum(float(r.get("seconds", 0)) for r in rows)),
        rounds=tuple(rows),
    )


def spread(values: list[float], digits: int = 3) -> str:
    """``mean ± std (k)`` over seeds (the sample std; a single seed shows no ± and a ``¹``)."""
    if not values:
        return "—"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}¹"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f} ({len(values)})"


def _attack_label(attack: str) -> str:
    # Every attacked run of the comparison has its adversaries vote for each other as well.
    return attack.replace("+collude-votes", "")


def _table(
    outcomes: list[Outcome], methods: list[str], value: str, row: Callable[[Outcome], str] | None = None
) -> list[str]:
    """A markdown table of ``value``: a row per attack (or per ``row(outcome)``), a column per
    method, each cell its spread over the seeds."""
    label = row or (lambda o: _attack_label(o.attack))
    rows = list(dict.fromkeys(label(o) for o in outcomes))
    lines = [
        "| attack | " + " | ".join(methods) + " |",
        "| --- |" + " ---: |" * len(methods),
    ]
    for name in rows:
        cells = []
        for method in methods:
            values = [
                getattr(o, value)
                for o in outcomes
                if label(o) == name and o.method == method and getattr(o, value) is not None
            ]
            cells.append(spread(values))
        if any(c != "—" for c in cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _attack_and_e(outcome: Outcome) -> str:
    if outcome.attack == "none":
        return "none"
    return f"{_attack_label(outcome.attack)}, e = {outcome.attack_fraction:g}"


def _in_table_order(outcomes: list[Outcome], split: str) -> list[Outcome]:
    """The outcomes of ``split``, no attack first, then by attack (in the order the attacks first
    appear) and e."""
    order = list(dict.fromkeys(o.attack for o in outcomes))
    return sorted(
        (o for o in outcomes if o.split == split),
        key=lambda o: (order.index(o.attack) if o.attack != "none" else -1, o.attack_fraction or 0.0),
    )


def summary(outcomes: list[Outcome], methods: list[str]) -> list[str]:
    """Markdown lines: every group at once, a table per split: final accuracy and backdoor success
    for each attack and e (rows, sorted by attack then e) and method (columns)."""
    lines: list[str] = []
    for split in dict.fromkeys(o.split for o in outcomes):
        mine = _in_table_order(outcomes, split)
        used = [m for m in methods if any(o.method == m for o in mine)]
        lines += [
            f"### Split {split}: final test accuracy",
            "",
            *_table(mine, used, "final_accuracy", _attack_and_e),
        ]
        backdoored = [o for o in mine if o.attack_success_rate is not None]
        if backdoored:
            lines += ["", f"### Split {split}: backdoor success rate", ""]
            lines += _table(backdoored, used, "attack_success_rate", _attack_and_e)
        lines.append("")
    return lines


def _accuracy_and_backdoor(outcomes: list[Outcome]) -> str:
    """``mean ± std (k)`` of the final accuracy, and the mean backdoor success in brackets."""
    cell = spread([o.final_accuracy for o in outcomes])
    backdoor = [o.attack_success_rate for o in outcomes if o.attack_success_rate is not None]
    return cell + (f" ({statistics.fmean(backdoor):.3f})" if backdoor else "")


def headline(outcomes: list[Outcome], chosen: Headline) -> list[str]:
    """Markdown lines: per split, a row per attack and e where ``chosen.method`` has runs: its final
    accuracy (backdoor success), the adversaries' updates among its elected, the most accurate of
    ``chosen.best_of`` over the same seeds, the difference of the means, and ``chosen.beside``."""
    best_of = " / ".join(chosen.best_of)
    lines = [
        f"Final accuracy, mean ± sample std (seeds), with the mean backdoor success in brackets; the best "
        f"of {best_of} is the most accurate of them over the same seeds; Δ is {chosen.method}'s mean "
        "minus the best's.",
        "",
    ]
    for split in dict.fromkeys(o.split for o in outcomes if o.method == chosen.method):
        mine = _in_table_order(outcomes, split)
        lines += [
            f"### Split {split}",
            "",
            f"| attack | {chosen.method} | adversaries among its elected | best of {best_of} | Δ |"
            + "".join(f" {m} |" for m in chosen.beside),
            "| --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(chosen.beside),
        ]
        for row in dict.fromkeys(_attack_and_e(o) for o in mine if o.method == chosen.method):
            here = [o for o in mine if _attack_and_e(o) == row]
            ours = [o for o in here if o.method == chosen.method]
            seeds = sorted(o.seed for o in ours)
            by_method = {m: [o for o in here if o.method == m] for m in chosen.best_of}
            # Only a rival with the same seeds: a mean over other seeds is another measurement.
            rivals = {m: runs for m, runs in by_method.items() if sorted(o.seed for o in runs) == seeds}
            means = {m: statistics.fmean(o.final_accuracy for o in runs) for m, runs in rivals.items()}
            best = max(means, key=means.__getitem__, default=None)
            if best is None:
                best_cell, delta = "—", "—"
            else:
                best_cell = f"{_accuracy_and_backdoor(rivals[best])} {best}"
                delta = f"{statistics.fmean(o.final_accuracy for o in ours) - means[best]:+.3f}"
            used, slots = sum(o.adversaries_used for o in ours), sum(o.slots for o in ours)
            beside = [[o for o in here if o.method == m] for m in chosen.beside]
            lines.append(
                f"| {row} | {_accuracy_and_backdoor(ours)} | {used} of {slots} | {best_cell} | {delta} |"
                + "".join(f" {_accuracy_and_backdoor(b) if b else '—'} |" for b in beside)
            )
        lines.append("")
    return lines


def plot_group(outcomes: list[Outcome], methods: list[str], path: Path, title: str) -> None:
    """Grouped bars: final accuracy (and backdoor success, when any) per attack and method,
    the mean over seeds with the sample std as an error bar, kept within [0, 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seccl.runs.plots import clipped_band

    attacks = list(dict.fromkeys(o.attack for o in outcomes))
    backdoors = [
        a for a in attacks if any(o.attack_success_rate is not None for o in outcomes if o.attack == a)
    ]
    panels = [("final_accuracy", "final test accuracy", attacks)]
    if backdoors:
        panels.append(("attack_success_rate", "backdoor success rate", backdoors))
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(max(6.0, 1.3 * len(attacks) + 2), 3.4 * len(panels) + 0.4),
        dpi=110,
        squeeze=False,
        layout="constrained",
    )
    width = 0.8 / max(1, len(methods))
    for ax, (key, label, names) in zip(axes[:, 0], panels, strict=True):
        for j, method in enumerate(methods):
            means, below, above, xs = [], [], [], []
            for i, attack in enumerate(names):
                values = [
                    getattr(o, key)
                    for o in outcomes
                    if o.attack == attack and o.method == method and getattr(o, key) is not None
                ]
                if values:
                    mean, low, high = clipped_band(values)
                    xs.append(i + (j - (len(methods) - 1) / 2) * width)
                    means.append(mean)
                    below.append(mean - low)
                    above.append(high - mean)
            if xs:
                ax.bar(xs, means, width, yerr=[below, above], capsize=2, label=method)
        ax.set_xticks(range(len(names)), [_attack_label(a) for a in names], fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)  # the same bar width however few runs have finished
        ax.set_ylim(0, 1)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_title(title, fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    # Below the panels, clear of the bars (accuracies sit near the top, backdoor rates anywhere).
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels) or 1, fontsize=7)
    fig.savefig(path)
    plt.close(fig)


def _kept_out_table(outcomes: list[Outcome], methods: list[str]) -> list[str]:
    """The honest updates each filtering rule kept out, for the rules that record it."""
    filtering = [m for m in methods if any(o.method == m and o.honest_kept_out is not None for o in outcomes)]
    if not filtering:
        return []
    lines = [
        "",
        "Honest updates kept out, mean per round over rounds and seeds: by gram-gate's filter (dropped, "
        "their ballots not counted, or rejected by trimmed Krum, their ballots counted) or not kept by "
        "Multi-Krum or FLTrust (Multi-Krum keeps N − f whatever happens, so without attack it leaves "
        "f honest updates out):",
        "",
        "| attack | " + " | ".join(filtering) + " |",
        "| --- |" + " ---: |" * len(filtering),
    ]
    for attack in dict.fromkeys(o.attack for o in outcomes):
        cells = []
        for m in filtering:
            values = [
                o.honest_kept_out
                for o in outcomes
                if o.attack == attack and o.method == m and o.honest_kept_out is not None
            ]
            cells.append(f"{statistics.fmean(values):.1f}" if values else "—")
        lines.append(f"| {_attack_label(attack)} | " + " | ".join(cells) + " |")
    return lines


def write_comparison(experiment: Experiment, places: Places) -> None:
    """results.csv (one row per finished run), rounds.csv (every round of every finished run),
    results.md (per group: accuracy and backdoor tables, time per run) and a PNG per group, from
    the runs' records."""
    out = places.results
    outcomes = [
        outcome(run, places.record_dir(run.name))
        for run in experiment.runs
        if not run.is_baseline and has_record(run, places)
    ]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(o.row() for o in outcomes)
    atomic_write_bytes(out / "results.csv", table.getvalue().encode())
    per_round = io.StringIO(newline="")
    writer = csv.DictWriter(
        per_round, fieldnames=["run", "round", "accuracy", "macro_f1", "attack_success_rate"]
    )
    writer.writeheader()
    for o in outcomes:
        for r in o.rounds:
            asr = r.get("attack_success_rate", r.get("extra", {}).get("attack_success_rate"))
            writer.writerow(
                {
                    "run": o.run,
                    "round": r["round"],
                    "accuracy": r["accuracy"],
                    "macro_f1": r["macro_f1"],
                    "attack_success_rate": asr,
                }
            )
    atomic_write_bytes(out / "rounds.csv", per_round.getvalue().encode())

    planned = [r for r in experiment.runs if not r.is_baseline]
    methods = list(dict.fromkeys(r.method for r in planned))
    lines = [
        f"# {experiment.title}",
        "",
        f"`seccl experiment {experiment.name}`: {len(outcomes)} of {len(planned)} runs finished. "
        "Cells: mean ± sample std over seeds (number of seeds); ¹ marks a single seed.",
        "",
        "## Summary",
        "",
        *summary(outcomes, methods),
    ]
    if experiment.headline is not None:
        head = experiment.headline
        lines += [f"## {head.method} against the best of {', '.join(head.best_of)}", ""]
        lines += headline(outcomes, head)
    for group in dict.fromkeys(r.group for r in planned):
        mine = [o for o in outcomes if o.group == group]
        wanted = [r for r in planned if r.group == group]
        group_methods = [m for m in methods if any(r.method == m for r in wanted)]
        e = {float(r.settings.get("attack_fraction", 0.2)) for r in wanted if r.settings.get("attack")}
        split = {str(r.settings.get("split", "iid")) for r in wanted}
        lines += [
            f"## {group}",
            "",
            f"{len(mine)} of {len(wanted)} runs finished; split {', '.join(sorted(split))}",
        ]
        lines[-1] += f", e = {', '.join(f'{x:g}' for x in sorted(e))}." if e else ", no adversaries."
        lines.append("")
        if not mine:
            continue
        (out / group).mkdir(parents=True, exist_ok=True)
        plot_group(mine, group_methods, out / group / "comparison.png", f"{experiment.name}: {group}")
        lines += [f"![{group}]({group}/comparison.png)", "", "Final test accuracy:", ""]
        lines += _table(mine, group_methods, "final_accuracy")
        if any(o.attack_success_rate is not None for o in mine):
            lines += ["", "Backdoor success rate (triggered test digits classified as the target, 0):", ""]
            lines += _table(
                [o for o in mine if o.attack_success_rate is not None], group_methods, "attack_success_rate"
            )
        if any(o.attack != "none" for o in mine):
            lines += [
                "",
                "Adversaries' updates elected (SecCL), kept (Multi-Krum) or trusted above 0 (FLTrust), "
                "of all slots, summed over rounds and seeds; `all`: the rule uses every update:",
                "",
            ]
            lines += [
                "| attack | " + " | ".join(group_methods) + " |",
                "| --- |" + " ---: |" * len(group_methods),
            ]
            for attack in dict.fromkeys(o.attack for o in mine if o.attack != "none"):
                cells = []
                for m in group_methods:
                    chosen = [o for o in mine if o.attack == attack and o.method == m]
                    used, slots = sum(o.adversaries_used for o in chosen), sum(o.slots for o in chosen)
                    if m in UNSELECTIVE:
                        cells.append("all" if chosen else "—")
                    else:
                        cells.append(f"{used} of {slots}" if chosen else "—")
                lines.append(f"| {_attack_label(attack)} | " + " | ".join(cells) + " |")
        lines += _kept_out_table(mine, group_methods)
        for run in experiment.runs:
            if run.is_baseline and run.group == group and has_record(run, places):
                data = json.loads((places.record_dir(run.name) / "baseline.json").read_text())
                seed, accuracy = data["config"].get("seed", 0), float(data["final_accuracy"])
                lines += [
                    "",
                    f"Centralized training on the union of the same train digits, {run.baseline_epochs} "
                    f"epochs (seed {seed}): accuracy {accuracy:.3f}.",
                ]
        seconds = {m: [o.seconds for o in mine if o.method == m] for m in group_methods}
        lines += [
            "",
            "Seconds per run: "
            + ", ".join(f"{m} {statistics.fmean(s):.0f}" for m, s in seconds.items() if s)
            + ".",
            "",
        ]
    atomic_write_bytes(out / "results.md", ("\n".join(lines) + "\n").encode())
