"""A participant's own chain checks cost the same number of JSON-RPC requests a round whatever N
is: one call returns every update digest of a round, and it reads no receipt but its own two."""

from __future__ import annotations

from collections import Counter
from typing import Any

from web3 import Web3

from seccl.chain.backends import EmbeddedChain
from seccl.learning.splits import load_participant_data
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import Simulation


class CountingChain(EmbeddedChain):
    """The embedded EVM, counting every request of every connection it opens, by connection."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: list[tuple[Web3, Counter[str]]] = []

    def connect(self) -> Web3:
        w3 = super().connect()
        counts: Counter[str] = Counter()
        inner = w3.manager.request_blocking

        def counted(method: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
            counts[str(method)] += 1
            return inner(method, params, *args, **kwargs)

        w3.manager.request_blocking = counted  # type: ignore[method-assign]
        self.counts.append((w3, counts))
        return w3


def requests_per_participant(n: int) -> list[Counter[str]]:
    """Each participant's requests in one honest round of an ``n``-participant session."""
    parts, test = load_participant_data(
        dataset="mnist",
        data_root=None,
        participants=n,
        split="iid",
        alpha=0.5,
        per_participant=20,
        validation_fraction=0.25,
        seed=0,
    )
    chain = CountingChain()
    sim = Simulation(
        backend=chain,
        parts=parts,
        test=test,
        rounds=1,
        candidate_fraction=0.25,
        settings=LearningSettings(local_epochs=1),
        seed=0,
    )
    own = [next(c for w3, c in chain.counts if w3 is p.board.w3) for p in sim.participants]
    before = [Counter(c) for c in own]
    result = sim.run()
    assert len(result.rounds) == 1 and not result.evidence
    return [after - start for after, start in zip(own, before, strict=True)]


def test_a_participants_requests_a_round_grow_with_n_only_by_the_reveals_it_reads() -> None:
    small, large = requests_per_participant(4), requests_per_participant(8)

    # Reading the revealed updates takes one transaction (its calldata) per reveal, found by one
    # log query; every other request is the same at any N.
    assert all(c["eth_getTransactionByHash"] == 4 for c in small)
    assert all(c["eth_getTransactionByHash"] == 8 for c in large)
    assert len({sum(c.values()) - c["eth_getTransactionByHash"] for c in small + large}) == 1, (small, large)
    # Its own commitment's, reveal's and ballot's receipts, never one per message it was handed.
    assert all(c["eth_getTransactionReceipt"] == 3 for c in small + large)
    # No chain-id or accounts look-up per call (web3's validation, eth-tester's sender guess): the
    # chain id once, to sign its one transaction of the round (the reveal).
    assert all(c["eth_chainId"] <= 1 and c["eth_accounts"] == 0 for c in small + large)
