"""Runs every attack at the paper's scale and writes one table row per attack (issue: adversaries).

    python -m seccl.experiments.attack_table --out runs/attack-table [--only NAME ...]

Participant attacks run at N, l, e, rounds as given (default 20, 0.2, 0.2, 10); a row says how
many elected slots the adversaries took ("throttled" when none). Server deviations run
``--server-rounds`` rounds (default 2); a row says whether each was caught (findings that
``seccl verify-evidence`` confirms) or prevented (the contracts let participants undo it on-chain:
posting their own update or ballot, tallying), who found what, and what the chain upheld.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.verification import Status
from seccl.roles.adversaries.registry import PARTICIPANT_ATTACKS
from seccl.roles.adversaries.server import SERVER_ATTACKS
from seccl.runs.config import RunConfig
from seccl.runs.launch import run_config
from seccl.runs.records import write_run


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
    """One server deviation's row: caught (findings an outsider confirms from the chain and the
    server's own signatures) or prevented (the contracts let participants undo it themselves)."""
    run = replace(config, server_attack=name, rounds=rounds, out_dir=str(out / f"server-{name}"))
    started = time.perf_counter()
    result = run_config(run, log=lambda _line: None)
    write_run(run, result, run.run_dir)
    statuses = Counter(str(v.status) for v in result.verdicts)
    confirmed = [
        e for e, v in zip(result.evidence, result.verdicts, strict=True) if v.status is Status.CONFIRMED
    ]
    completed = {r.round for r in result.rounds}
    server_tallies = len(
        {t.round for t in result.transactions if t.action == "tally" and t.round in completed}
    )
    silent = [e for e in result.evidence if e.kind is EvidenceKind.SERVER_SILENT]
    acted = sorted({e.finder_index for e in silent if e.finder_index is not None})
    if confirmed:
        outcome = "caught"
    elif result.rounds and (acted or server_tallies < len(result.rounds) or result.evidence):
        outcome = "prevented"
    else:
        outcome = "NOT DETECTED"
    return {
        "attack": name,
        "kind": "server",
        "outcome": outcome,
        "evidence": len(result.evidence),
        "evidence_kinds": sorted({str(e.kind) for e in result.evidence}),
        "verdicts": dict(statuses),
        "accusations_upheld": result.chain["accusations_upheld"],
        "first_detected_round": min((e.round for e in confirmed), default=None),
        "finders": sorted({e.finder_index for e in result.evidence if e.finder_index is not None}),
        "acted_on_chain": acted,
        "rounds_tallied_by_participants": len(result.rounds) - server_tallies,
        "rounds_completed": len(result.rounds),
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
            verdicts = ", ".join(f"{n} {status}" for status, n in sorted(row["verdicts"].items())) or "none"
            figures = (
                f"{row['evidence']} findings ({', '.join(row['evidence_kinds']) or '-'}; {verdicts}) from "
                f"participants {row['finders']}; {row['accusations_upheld']} upheld on-chain; "
                f"participants acted on-chain: {row['acted_on_chain'] or '-'}; "
                f"{row['rounds_tallied_by_participants']} of {row['rounds_completed']} rounds tallied "
                "by participants"
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
    parser.add_argument(
        "--only",
        nargs="*",
        help="what to run: attack names, server:NAME, 'participants', 'servers' or 'honest' (default: all)",
    )
    args = parser.parse_args(argv)
    config = RunConfig(
        participants=args.participants,
        rounds=args.rounds,
        candidate_fraction=args.candidate_fraction,
        attack_fraction=args.attack_fraction,
        local_epochs=args.local_epochs,
    )
    groups = {
        "participants": list(PARTICIPANT_ATTACKS),
        "servers": [f"server:{s}" for s in SERVER_ATTACKS],
    }
    names = [
        n for name in args.only or ["honest", "participants", "servers"] for n in groups.get(name, [name])
    ]
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
        tag = "-".join(args.only).replace(":", "_") if args.only else "all"
        if len(tag) > 80:  # a file name has a length limit
            tag = "selection-" + hashlib.sha256(tag.encode()).hexdigest()[:8]
        (args.out / f"rows-{tag}.json").write_text(json.dumps(rows, indent=2) + "\n")
        (args.out / f"table-{tag}.md").write_text(markdown(rows, config, args.server_rounds))
    print(markdown(rows, config, args.server_rounds))


if __name__ == "__main__":
    main()
