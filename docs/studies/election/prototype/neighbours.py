"""Reads a finished gram-gate run's revealed updates and says, round by round, whether the
coalition's members are each other's nearest by summed residual (the signal a "no vouching for
your nearest" ballot rule would use). Analysis only, from the run directory's own records: every
revealed update (the rule's own window also leaves out near-duplicates).

    python docs/studies/election/prototype/neighbours.py RUN_DIR [K]
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np

from seccl.election.gram_gate import HISTORY_ROUNDS, summed_residual_cosines
from seccl.protocol.messages import UpdateMessage, decode_message


def nearest(pairs: dict[tuple[int, int], int], members: list[int], i: int, k: int) -> list[int]:
    """The ``k`` members whose summed residuals are nearest ``i``'s."""
    others = [j for j in members if (i, j) in pairs]
    return sorted(others, key=lambda j: -pairs[(i, j)])[:k]


def main(run: Path, k: int) -> None:
    chain = json.loads((run / "chain.json").read_text())
    index = {address.lower(): i for i, address in enumerate(chain["participants"])}
    coalition = set(json.loads((run / "metrics.json").read_text())["rounds"][0]["adversaries"])
    rounds: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    with sqlite3.connect(run / "messages.sqlite") as db:
        for round_, author, data in db.execute("SELECT round, author, data FROM messages WHERE kind = 0"):
            message = decode_message(bytes(data))
            assert isinstance(message, UpdateMessage)
            update = message.update
            rounds.setdefault(round_, {})[index[author.lower()]] = (update.indices, update.values)
    for r in sorted(rounds):
        window = [rounds[t] for t in range(r - HISTORY_ROUNDS + 1, r + 1) if t in rounds]
        pairs = summed_residual_cosines(window)
        members = sorted(window[-1])
        near = {i: nearest(pairs, members, i, k) for i in members}
        fellows = [sum(j in coalition for j in near[i]) for i in sorted(coalition & set(members))]
        honest = [sum(j in coalition for j in near[i]) for i in members if i not in coalition]
        print(
            f"round {r:2d}: fellows among each member's {k} nearest {fellows}; "
            f"members among an honest participant's {k} nearest, mean {np.mean(honest):.2f}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3)
