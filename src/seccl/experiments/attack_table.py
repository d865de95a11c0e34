"""Runs every attack at the paper's scale and writes one table row per attack (issue: adversaries).

    python -m seccl.experiments.attack_table --out runs/attack-table [--only NAME ...]

Participant attacks run at N, l, e, rounds as given (default 20, 0.2, 0.2, 10); a row says how
many elected slots the adversaries took ("throttled" when none). Server attacks are detected in
their first round, so they run ``--server-rounds`` rounds (default 2); a row says who found what.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from seccl.experiments.config import RunConfig
from seccl.experiments.records import write_run
from seccl.experiments.session import run_config
from seccl.roles.malicious_participant import PARTICIPANT_ATTACKS
from seccl.roles.malicious_server import SERVER_ATTACKS


def participant_row(config: RunConfig, name: str, out: Path) -> dict[str, Any]:
    run = replace(config, attack=name, out_dir=str(out / name))
    started = time.perf_counter()
    result = run_config(run, log=print)
    write_run(run, result, run.run_dir)
    elected = [int(r.extra.get("adversaries_elected", 0)) for r in result.rounds]
    slots = sum(len(r.candidates) for r in result.rounds)
    row = {
        "attack": name,
        "kind": "participant",
        "outcome": "throttled" if sum(elected) == 0 else f"elected {sum(elected)} of {slots} slots",
        "adversaries_elected_per_round": elected,
        "final_accuracy": round(result.final_accuracy, 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    asr = [r.extra["attack_success_rate"] for r in result.rounds if "attack_success_rate" in r.extra]
    if asr:
        row["backdoor_success_final"] = round(asr[-1], 4)
    return row


def server_row(config: RunConfig, name: str, out: Path, rounds: int) -> dict[str, Any]:
    run = replace(config, server_attack=name, rounds=rounds, out_dir=str(out / f"server-{name}"))
    started = time.perf_counter()
    result = run_config(run, log=lambda _line: None)
    write_run(run, result, run.run_dir)
    kinds = sorted({str(e.kind) for e in result.evidence})
    first = min((e.round for e in result.evidence), default=None)
    participants = list(result.chain["participants"])
    finders = sorted({participants.index(e.finder) for e in result.evidence})
    return {
        "attack": name,
        "kind": "server",
        "outcome": "detected" if result.evidence else "NOT DETECTED",
        "evidence": len(result.evidence),
        "evidence_kinds": kinds,
        "first_detected_round": first,
        "finders": finders,
        "final_accuracy": round(result.final_accuracy, 4),
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown(rows: list[dict[str, Any]], config: RunConfig, server_rounds: int) -> str:
    lines = [
        f"N = {config.participants}, l = {config.candidate_fraction:g}, e = {config.attack_fraction:g}, "
        f"{config.rounds} rounds (server attacks: {server_rounds}), {config.dataset}, "
        f"{config.local_epochs} local epochs, seed {config.seed}",
        "",
        "| attack | detected / throttled | figures |",
        "| --- | --- | --- |",
    ]
    for row in rows:
        if row["kind"] == "participant":
            figures = (
                f"adversaries elected per round {row['adversaries_elected_per_round']}; "
                f"final accuracy {row['final_accuracy']:.4f}"
            )
            if "backdoor_success_final" in row:
                figures += f"; backdoor success {row['backdoor_success_final']:.3f}"
        elif row["kind"] == "honest":
            figures = f"final accuracy {row['final_accuracy']:.4f}"
        else:
            figures = (
                f"{row['evidence']} evidence records ({', '.join(row['evidence_kinds'])}) from "
                f"participants {row['finders']}, first in round {row['first_detected_round']}"
            )
        lines.append(f"| {row['attack']} | {row['outcome']} | {figures} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/attack-table"))
    parser.add_argument("-n", "--participants", type=int, default=20)
    parser.add_argument("-r", "--rounds", type=int, default=10)
    parser.add_argument("-l", "--candidate-fraction", type=float, default=0.2)
    parser.add_argument("-e", "--attack-fraction", type=float, default=0.2)
    parser.add_argument("--local-epochs", type=int, default=10)
    parser.add_argument("--server-rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="attack names to run (default: all, and an honest run)")
    args = parser.parse_args(argv)
    config = RunConfig(
        participants=args.participants,
        rounds=args.rounds,
        candidate_fraction=args.candidate_fraction,
        attack_fraction=args.attack_fraction,
        local_epochs=args.local_epochs,
    )
    names = args.only or ["honest", *PARTICIPANT_ATTACKS, *(f"server:{s}" for s in SERVER_ATTACKS)]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        print(f"== {name}", flush=True)
        if name == "honest":
            result = run_config(replace(config, out_dir=str(args.out / "honest")), log=print)
            rows.append(
                {
                    "attack": "none (honest)",
                    "kind": "honest",
                    "outcome": "-",
                    "final_accuracy": round(result.final_accuracy, 4),
                }
            )
        elif name.startswith("server:"):
            rows.append(server_row(config, name.split(":", 1)[1], args.out, args.server_rounds))
        else:
            rows.append(participant_row(config, name, args.out))
        print(json.dumps(rows[-1]), flush=True)
        tag = "-".join(n.replace(":", "_") for n in names) if args.only else "all"
        (args.out / f"rows-{tag}.json").write_text(json.dumps(rows, indent=2) + "\n")
        (args.out / f"table-{tag}.md").write_text(markdown(rows, config, args.server_rounds))
    print(markdown(rows, config, args.server_rounds))


if __name__ == "__main__":
    main()
