"""Reads a finished gram-gate run's revealed updates and says, round by round, whether the
coalition's members are each other's nearest by summed residual (the signal a "no vouching for
your nearest" ballot rule would use). Analysis only, from the run directory's own records: every
revealed update (the rule's own window also leaves out near-duplicates).

    python docs/studies/election/prototype/neighbours.py RUN_DIR [K]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from counts import revealed_updates  # this directory's replay script (on the path when run)

from seccl.election.gram_gate import HISTORY_ROUNDS, summed_residual_cosines


def nearest(pairs: dict[tuple[int, int], int], members: list[int], i: int, k: int) -> list[int]:
    """The ``k`` members whose summed residuals are nearest ``i``'s."""
    others = [j for j in members if (i, j) in pairs]
    return sorted(others, key=lambda j: -pairs[(i, j)])[:k]


def main(run: Path, k: int) -> None:
    coalition = set(json.loads((run / "metrics.json").read_text())["rounds"][0]["adversaries"])
    rounds = revealed_updates(run)
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
