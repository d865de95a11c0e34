"""JSON-RPC requests per participant per round, counted on every participant's own connection.

Runs a short honest SecCL session (tiny data, one local epoch) on the embedded EVM for each N
given, wraps ``w3.manager.request_blocking`` of every connection a participant opens, and prints
the requests each participant made in a round (mean, min, max), by method. The server's and the
auditor's connections are counted apart. Usage: ``python bench/chain_requests.py [N ...]``
(default 10 30).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from web3 import Web3

from seccl.chain.backends import ChainBackend, EmbeddedChain
from seccl.learning.splits import load_participant_data
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import Simulation

ROUNDS = 2
PER_PARTICIPANT = 40


class CountingBackend:
    """``backend``, with every request of every connection it opens counted by connection."""

    def __init__(self, backend: ChainBackend):
        self._backend = backend
        self.connections: list[tuple[Web3, Counter[str]]] = []

    @property
    def name(self) -> str:
        return self._backend.name

    def connect(self) -> Web3:
        w3 = self._backend.connect()
        counts: Counter[str] = Counter()
        inner: Callable[..., Any] = w3.manager.request_blocking

        def counted(method: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
            counts[str(method)] += 1
            return inner(method, params, *args, **kwargs)

        w3.manager.request_blocking = counted
        self.connections.append((w3, counts))
        return w3

    def counts_of(self, w3: Web3) -> Counter[str]:
        return next(c for conn, c in self.connections if conn is w3)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def measure(n: int) -> tuple[list[Counter[str]], Counter[str], float]:
    """Per participant, its requests per round; the server's; and every connection's together
    (participants, server and the simulation's own reader) per round."""
    parts, test = load_participant_data(
        dataset="mnist",
        data_root=None,
        participants=n,
        split="iid",
        alpha=0.5,
        per_participant=PER_PARTICIPANT,
        validation_fraction=0.25,
        seed=0,
    )
    backend = CountingBackend(EmbeddedChain())
    sim = Simulation(
        backend=backend,
        parts=parts,
        test=test,
        rounds=ROUNDS,
        candidate_fraction=0.2,
        settings=LearningSettings(local_epochs=1),
        seed=0,
    )
    # Count the rounds only, not the set-up (deployment checks, funding).
    mine = [backend.counts_of(p.board.w3) for p in sim.participants]
    server = backend.counts_of(sim.server.board.w3)
    before = [Counter(c) for c in mine]
    server_before = Counter(server)
    everyone_before = sum(sum(c.values()) for _, c in backend.connections)
    result = sim.run()
    if len(result.rounds) != ROUNDS or result.evidence:
        raise SystemExit(f"N = {n}: the honest run did not complete cleanly")
    per_round = [
        Counter({k: v / ROUNDS for k, v in (c - b).items()}) for c, b in zip(mine, before, strict=True)
    ]
    everyone = sum(sum(c.values()) for _, c in backend.connections) - everyone_before
    return per_round, Counter({k: v / ROUNDS for k, v in (server - server_before).items()}), everyone / ROUNDS


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [10, 30]
    for n in sizes:
        start = time.perf_counter()
        per_round, server, everyone = measure(n)
        totals = [sum(c.values()) for c in per_round]
        methods: Counter[str] = Counter()
        for c in per_round:
            methods.update(c)
        print(
            f"N = {n}: requests per participant per round: mean {sum(totals) / n:.1f}, "
            f"min {min(totals):.1f}, max {max(totals):.1f}; the server's: {sum(server.values()):.1f}; "
            f"all connections: {everyone:.1f} a round, {everyone / n:.1f} per participant "
            f"({time.perf_counter() - start:.1f} s)"
        )
        for method, count in methods.most_common():
            print(f"    {method:<32} {count / n:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
