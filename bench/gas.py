"""Gas of every contract call in one full SecCL round on the embedded EVM, for N = 10, 20, 30, 100
(or the sizes given: ``python bench/gas.py 30``).

One session per N, deployed from the server's own key with `deploy_session`; every update, ballot
and model carries a real signature of its author; M = ceil(0.2·N). Printed next to the figures of
an earlier contract design (server-only relays, evaluations posted on the board as well, the
server opening each round and election), where it reported them.
"""

from __future__ import annotations

import random
import sys
import time
from collections import defaultdict

import numpy as np
from eth_account import Account
from eth_utils import keccak

from seccl.chain.accounts import fund, signing_connection
from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import MessageKind, Phases
from seccl.chain.session import SessionTerms, deploy_session
from seccl.chain.signing import SigningDomain
from seccl.election import ABSTAIN, borda_tally, candidate_count
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.messages import EvaluationMessage, ModelMessage, UpdateMessage
from seccl.protocol.statements import Delivery

SIZES = (10, 20, 30, 100)
FRACTION = 0.2  # the paper's l: M = ceil(l·N) candidates
SEED = 2024
DIMENSION = 10_000  # a small model: the digest, not the payload, goes on chain
KEEP = 1_000  # coordinates per sparse update (s = 0.1)
ROUND = 1
PHASES = Phases(update=3_600, ballot=3_600, model=3_600)

ROWS = (
    ("deploy board", "deploy_board"),
    ("deploy consensus", "deploy_consensus"),
    ("postUpdate", "post_update"),
    ("submitScores", "submit_scores"),
    ("tally", "tally"),
    ("postModel", "post_model"),
    ("accuseDelivery (N-1 updates, upheld)", "accuse_delivery"),
    ("accuseMissingModel (upheld)", "accuse_missing_model"),
)
PER_ROUND = ("post_update", "submit_scores", "tally", "post_model")

# The contracts before the gas work of issue 8, as this script measured them (same round, same
# calls): ballots of 32-byte scores, each ballot's scores both counted in storage and emitted as
# words, a stored update counter, the elected list in a storage array, an O(N·M) selection.
BEFORE: dict[str, dict[int, int]] = {
    "deploy_board": {10: 1_989_602, 20: 2_442_628, 30: 2_895_702, 100: 6_067_110},
    "deploy_consensus": {10: 1_994_540, 20: 1_994_540, 30: 1_994_540, 100: 1_994_540},
    "post_update": {10: 70_644, 20: 69_791, 30: 69_508, 100: 69_107},
    "submit_scores": {10: 92_364, 20: 120_140, 30: 147_684, 100: 356_612},
    "tally": {10: 121_280, 20: 178_335, 30: 253_386, 100: 1_466_139},
    "post_model": {10: 92_499, 20: 92_499, 30: 92_499, 100: 92_487},
    "accuse_delivery": {10: 50_430, 20: 69_820, 30: 91_790, 100: 245_340},
    "accuse_missing_model": {10: 34_642, 20: 34_642, 30: 34_642, 100: 34_642},
    "per_participant": {10: 184_386, 20: 203_473, 30: 228_721, 100: 441_306},
}


def measure(n: int) -> dict[str, list[int]]:
    """Deploy a session of ``n`` participants and run one round; the gas of every call, by call."""
    rng = random.Random(SEED + n)
    np_rng = np.random.default_rng(SEED + n)
    m = candidate_count(FRACTION, n)
    backend = EmbeddedChain()
    # Fixed keys, so every run measures the same transactions (gas does not depend on the key).
    server = Account.from_key(keccak(text=f"seccl-bench-server-{n}"))
    accounts = [Account.from_key(keccak(text=f"seccl-bench-{n}-{i}")) for i in range(n)]
    fund(backend, server.address)
    w3 = signing_connection(backend, server)
    terms = SessionTerms(
        server=server.address,
        participants=tuple(a.address for a in accounts),
        candidates=m,
        nonce=keccak(text=f"seccl-bench-nonce-{n}"),
        tie_seed=keccak(text=f"seccl-bench-ties-{n}"),
        phases=PHASES,
        initial_model=keccak(text="seccl-bench-initial-model"),
    )
    board, consensus, deployment = deploy_session(w3, terms)
    domain = SigningDomain(int(w3.eth.chain_id), board.address, consensus.address, terms.nonce)
    gas: dict[str, list[int]] = defaultdict(list)
    gas["deploy_board"].append(deployment[0].gas_used)
    gas["deploy_consensus"].append(deployment[1].gas_used)

    updates: list[bytes] = []
    for account in accounts:
        indices = np.sort(np_rng.choice(DIMENSION, KEEP, replace=False))
        values = np_rng.normal(0.0, 0.01, KEEP)
        digest = UpdateMessage(ROUND, account.address, SparseUpdate(DIMENSION, indices, values)).digest()
        updates.append(digest)
        signature = domain.sign(account, ROUND, MessageKind.UPDATE, digest)
        gas["post_update"].append(board.post_update(ROUND, account.address, digest, signature).gas_used)

    # Macro-F1 scores in parts per million, distinct-ish; a voter's own entry is ABSTAIN.
    scores = {
        i: tuple(ABSTAIN if j == i else rng.randint(300_000, 990_000) for j in range(n)) for i in range(n)
    }
    for i, account in enumerate(accounts):
        digest = EvaluationMessage(ROUND, account.address, scores[i]).digest()
        signature = domain.sign(account, ROUND, MessageKind.EVALUATION, digest)
        receipt = consensus.submit_scores(ROUND, account.address, scores[i], signature)
        gas["submit_scores"].append(receipt.gas_used)
    record = consensus.tally(ROUND, n=n)
    assert record.receipt is not None
    gas["tally"].append(record.receipt.gas_used)
    expected = borda_tally(scores, n, m, tie_seed=terms.tie_seed, round_=ROUND).candidates
    if record.candidates != expected:
        raise SystemExit(f"N = {n}: the contract elected {record.candidates}, expected {expected}")

    params = np_rng.normal(0.0, 0.1, DIMENSION).astype(np.float32)
    digest = ModelMessage(ROUND, server.address, params).digest()
    signature = domain.sign(server, ROUND, MessageKind.MODEL, digest)
    gas["post_model"].append(board.post_model(ROUND, digest, signature).gas_used)
    if board.current_round() != ROUND + 1:
        raise SystemExit(f"N = {n}: posting the model did not open round {ROUND + 1}")

    # Not part of a round: what a participant pays to put the server's lies on record.
    delivered = [keccak(text="not the update on the board"), *updates[2:]]
    lie = Delivery.sign(
        server,
        domain,
        ROUND,
        MessageKind.UPDATE,
        accounts[0].address,
        [a.address for a in accounts[1:]],
        delivered,
    )
    receipt = board.accuse_delivery(
        ROUND, lie.kind, lie.recipient, lie.authors, lie.digests, 0, lie.signature
    )
    gas["accuse_delivery"].append(receipt.gas_used)
    info = board.round_info(ROUND + 1)
    backend.advance_time(info.model_deadline - int(w3.eth.get_block("latest")["timestamp"]) + 1)
    gas["accuse_missing_model"].append(board.accuse_missing_model(ROUND + 1).gas_used)
    if board.caught_count() != 2:
        raise SystemExit(f"N = {n}: the chain upheld {board.caught_count()} accusations, not 2")
    return gas


def mean(values: list[int]) -> int:
    return round(sum(values) / len(values))


def _cell(value: int | None, width: int) -> str:
    return f"{value:>{width},}" if value is not None else "—".rjust(width)


def main(argv: list[str]) -> int:
    sizes = tuple(int(a) for a in argv) or SIZES
    start = time.perf_counter()
    results = {n: measure(n) for n in sizes}
    elapsed = time.perf_counter() - start

    label_width = 38
    col = 11
    header = "call".ljust(label_width) + "".join(f"N = {n}".rjust(col) + "before".rjust(col) for n in sizes)
    rule = "-" * len(header)
    print("SecCL on-chain cost: gas used by each contract call in one full round (embedded EVM)")
    print(f"gas units; mean where a call repeats; N participants, M = ceil({FRACTION}·N) elected;")
    print("'before' is the contracts before issue 8's gas work (see BEFORE), at the sizes it was measured")
    print()
    print(header)
    print(rule)
    print(
        "M (candidates)".ljust(label_width)
        + "".join(f"{candidate_count(FRACTION, n):>{col}}" + "".rjust(col) for n in sizes)
    )
    print(rule)
    for label, key in ROWS:
        old = BEFORE.get(key, {})
        print(
            label.ljust(label_width)
            + "".join(_cell(mean(results[n][key]), col) + _cell(old.get(n), col) for n in sizes)
        )
    print(rule)
    totals = {n: sum(sum(results[n][key]) for key in PER_ROUND) for n in sizes}
    deploys = {n: results[n]["deploy_board"][0] + results[n]["deploy_consensus"][0] for n in sizes}
    old_per_participant = BEFORE["per_participant"]
    summary: tuple[tuple[str, dict[int, int], dict[int, int]], ...] = (
        ("per participant per round", {n: round(totals[n] / n) for n in sizes}, old_per_participant),
        ("total per round", totals, {n: v * n for n, v in old_per_participant.items()}),
        (
            "deploy (board + consensus, once)",
            deploys,
            {n: BEFORE["deploy_board"][n] + BEFORE["deploy_consensus"][n] for n in old_per_participant},
        ),
    )
    for label, values, old_values in summary:
        print(
            label.ljust(label_width)
            + "".join(_cell(values[n], col) + _cell(old_values.get(n), col) for n in sizes)
        )
    print()
    print("Per round = N·postUpdate + N·submitScores + tally + postModel (round 1 opens at deployment,")
    print("each later one when postModel lands; evaluations are recorded by the consensus contract only).")
    print(f"(measured in {elapsed:.1f} s of wall time)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
