"""Replays a finished gram-gate run's counted ballots under three counts and says how many of the
elected slots went to the coalition: the contract's (upper median of the counted entries), "no
vouching for your nearest" (a voter's entries for its K nearest by summed residual do not count)
and the honest voters' ballots alone. Per round and counterfactual: the training path is the
recorded one. Analysis only, from the run directory's records (`metrics.json`'s `scores`, the
revealed updates in `messages.sqlite`); ties are broken by index, not by the round's tie key, so
the first count can differ from the recorded election by a slot in a round of tied medians.

    python docs/studies/election/prototype/counts.py K RUN_DIR...
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from seccl.election.gram_gate import HISTORY_ROUNDS, summed_residual_cosines
from seccl.protocol.messages import UpdateMessage, decode_message

Scores = Sequence[Sequence[int | None]]


def elect(scores: Scores, m: int, skip: Collection[tuple[int, int]]) -> list[int]:
    """The ``m`` candidates with the highest upper median of the entries not in ``skip``."""
    voters = [v for v, row in enumerate(scores) if any(x is not None for x in row)]
    medians = {}
    for j in range(len(scores)):
        entries = sorted(
            s for v in voters if v != j and (v, j) not in skip and (s := scores[v][j]) is not None
        )
        if entries:
            medians[j] = entries[len(entries) // 2]
    return sorted(medians, key=lambda j: (-medians[j], j))[:m]


def revealed_updates(run: Path) -> dict[int, dict[int, tuple]]:
    """Every round's revealed updates by participant index, from the run's message store."""
    chain = json.loads((run / "chain.json").read_text())
    index = {address.lower(): i for i, address in enumerate(chain["participants"])}
    rounds: dict[int, dict[int, tuple]] = {}
    with sqlite3.connect(run / "messages.sqlite") as db:
        for round_, author, data in db.execute("SELECT round, author, data FROM messages WHERE kind = 0"):
            message = decode_message(bytes(data))
            assert isinstance(message, UpdateMessage)
            rounds.setdefault(round_, {})[index[author.lower()]] = (
                message.update.indices,
                message.update.values,
            )
    return rounds


def main(k: int, run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    coalition = set(metrics["rounds"][0]["adversaries"])
    m = len(metrics["rounds"][0]["elected"])
    rounds = revealed_updates(run)
    slots = {"contract": 0, f"no vouching for {k} nearest": 0, "honest voters only": 0}
    for record in metrics["rounds"]:
        r, scores = record["round"], record["scores"]
        if not scores:
            continue
        candidates = [j for j in range(len(scores)) if any(row[j] is not None for row in scores)]
        window = [rounds[t] for t in range(r - HISTORY_ROUNDS + 1, r + 1) if t in rounds]
        pairs = summed_residual_cosines(window)
        nearest = {
            (v, j)
            for v in range(len(scores))
            for j in sorted((j for j in candidates if (v, j) in pairs), key=lambda j: -pairs[(v, j)])[:k]
        }
        colluders = {(v, j) for v in coalition for j in candidates}
        for name, skip in zip(slots, (set(), nearest, colluders), strict=True):
            slots[name] += len(coalition & set(elect(scores, m, skip)))
    total = m * len(metrics["rounds"])
    print(f"{run.name}: coalition's slots of {total}: " + ", ".join(f"{n} {s}" for n, s in slots.items()))


if __name__ == "__main__":
    for path in sys.argv[2:]:
        main(int(sys.argv[1]), Path(path))
