"""Gas of every contract call in one full SecCL round on the embedded EVM, for N = 10, 20, 30, 100
(or the sizes given: ``python bench/gas.py 30``), under the Borda election and under gram-gate.

One session per N, deployed from the server's own key with `deploy_session`; every commitment,
ballot and model carries a real signature of its author, and every update is revealed on the board
at the real model's size (LeNet, d = 46,970, s = 0.1: 4,697 coordinates, 37,650 bytes); M = ceil(0.2·N).
Printed next to the contracts before issue 22 (commitments only: the bytes went through the server),
measured by this script's earlier version at e5043f8. On a consortium's own chain gas is block
space, not money; the last lines say what a public chain would charge at a stated price.
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
from seccl.chain.bulletin_board import MessageKind, Phases, UpdateFormat
from seccl.chain.session import SessionTerms, deploy_session
from seccl.chain.signing import SigningDomain
from seccl.election import ABSTAIN, borda_tally, candidate_count
from seccl.election.gram_gate import assumed_attackers, ballot_entries, filter_updates, gram_gate_tally
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.messages import (
    EvaluationMessage,
    ModelMessage,
    UpdateMessage,
    decode_message,
    invalid_entry,
)
from seccl.protocol.statements import Delivery

SIZES = (10, 20, 30, 100)
FRACTION = 0.2  # the paper's l: M = ceil(l·N) candidates
SEED = 2024
DIMENSION = 46_970  # the LeNet of every run: its updates' bytes now go on chain
KEEP = 4_697  # coordinates per sparse update: ceil(s·d) at s = 0.1
VALUE_BOUND = 10.0
ROUND = 1
PHASES = Phases(update=3_600, ballot=3_600, model=3_600, reveal=3_600)
GWEI_PRICE = 10  # a public chain's gas price for the cost line, in gwei
ETH_USD = 3_000  # and the ether price it assumes

ROWS = (
    ("deploy board", "deploy_board"),
    ("deploy consensus", "deploy_consensus"),
    ("postUpdate (the commitment)", "post_update"),
    ("revealUpdate (37,650 bytes of calldata)", "reveal_update"),
    ("submitScores", "submit_scores"),
    ("tally", "tally"),
    ("postModel", "post_model"),
    ("proveInvalid (upheld)", "prove_invalid"),
    ("accuseDelivery (a model, upheld)", "accuse_delivery"),
    ("accuseMissingModel (upheld)", "accuse_missing_model"),
)
PER_ROUND = ("post_update", "reveal_update", "submit_scores", "tally", "post_model")

# The contracts at e5043f8, before issue 22 (a digest per update, the bytes through the server),
# as this script's version of that commit measured them: `python bench/gas.py 10 20 30 100` there.
BEFORE: dict[str, dict[int, int]] = {
    "deploy_board": {10: 2_010_771, 20: 2_463_797, 30: 2_916_871, 100: 6_088_256},
    "deploy_consensus": {10: 2_129_577, 20: 2_129_577, 30: 2_129_577, 100: 2_129_587},
    "post_update": {10: 64_995, 20: 64_135, 30: 63_855, 100: 63_455},
    "submit_scores": {10: 67_405, 20: 71_172, 30: 76_072, 100: 141_646},
    "tally": {10: 86_667, 20: 107_481, 30: 149_850, 100: 635_203},
    "post_model": {10: 87_669, 20: 87_657, 30: 87_669, 100: 87_669},
    "accuse_missing_model": {10: 32_817, 20: 32_817, 30: 32_817, 100: 32_817},
    "per_participant": {10: 149_834, 20: 145_064, 30: 147_844, 100: 212_329},
}


def measure(n: int, election: str = "borda") -> dict[str, list[int]]:
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
        phases=PHASES,
        initial_model=keccak(text="seccl-bench-initial-model"),
        update_format=UpdateFormat(DIMENSION, KEEP, VALUE_BOUND),
        election=election,
        assumed_attackers=assumed_attackers(n) if election == "gram-gate" else 0,
    )
    board, consensus, deployment = deploy_session(w3, terms)
    domain = SigningDomain(int(w3.eth.chain_id), board.address, consensus.address, terms.nonce)
    gas: dict[str, list[int]] = defaultdict(list)
    gas["deploy_board"].append(deployment[0].gas_used)
    gas["deploy_consensus"].append(deployment[1].gas_used)

    messages: list[bytes] = []
    for i, account in enumerate(accounts):
        indices = np.sort(np_rng.choice(DIMENSION, KEEP, replace=False))
        values = np_rng.normal(0.0, 0.01, KEEP)
        if i == 0:
            values[KEEP // 2] = 2 * VALUE_BOUND  # one invalid update, for the proof below
        salt = keccak(text=f"seccl-bench-salt-{n}-{i}")
        update = UpdateMessage(ROUND, account.address, SparseUpdate(DIMENSION, indices, values), salt)
        messages.append(update.to_bytes())
        digest = update.digest()
        signature = domain.sign(account, ROUND, MessageKind.UPDATE, digest)
        gas["post_update"].append(board.post_update(ROUND, account.address, digest, signature).gas_used)
    for account, message in zip(accounts, messages, strict=True):
        fund(backend, account.address)  # only the author may reveal: from its own account
        own = board.for_reader(signing_connection(backend, account), sender=account.address)
        gas["reveal_update"].append(own.reveal_update(ROUND, account.address, message).gas_used)
    position = invalid_entry(messages[0], dimension=DIMENSION, update_size=KEEP, max_abs_value=VALUE_BOUND)
    assert position == KEEP // 2
    gas["prove_invalid"].append(
        board.prove_invalid(ROUND, accounts[0].address, messages[0], position).gas_used
    )

    # Macro-F1 scores in parts per million, distinct-ish; a voter's own entry is ABSTAIN.
    tie_seed = board.tie_seed_of(ROUND)
    if election == "gram-gate":
        # Every voter states the filter's view of the eligible updates (all but the invalid one).
        eligible = {i: decode_message(messages[i]) for i in range(1, n)}
        view = filter_updates(
            {
                i: (u.update.indices, u.update.values)
                for i, u in eligible.items()
                if isinstance(u, UpdateMessage)
            },
            n,
            assumed_attackers(n),
            tie_seed=tie_seed,
            round_=ROUND,
        )
        scores = {
            i: ballot_entries(view, {j: rng.randint(300_000, 990_000) for j in view.kept}, i, n)
            for i in range(n)
        }
    else:
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
    if election == "gram-gate":
        expected = gram_gate_tally(
            scores, n, m, eligible=(1 << n) - 2, tie_seed=tie_seed, round_=ROUND
        ).candidates
    else:
        expected = borda_tally(scores, n, m, tie_seed=tie_seed, round_=ROUND, eligible=range(1, n)).candidates
    if record.candidates != expected:
        raise SystemExit(f"N = {n}: the contract elected {record.candidates}, expected {expected}")

    params = np_rng.normal(0.0, 0.1, DIMENSION).astype(np.float32)
    digest = ModelMessage(ROUND, server.address, params).digest()
    signature = domain.sign(server, ROUND, MessageKind.MODEL, digest)
    gas["post_model"].append(board.post_model(ROUND, digest, signature).gas_used)
    if board.current_round() != ROUND + 1:
        raise SystemExit(f"N = {n}: posting the model did not open round {ROUND + 1}")

    # Not part of a round: what a participant pays to put the server's lies on record.
    lie = Delivery.sign(
        server,
        domain,
        ROUND,
        MessageKind.MODEL,
        accounts[0].address,
        [server.address],
        [keccak(text="a lie")],
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
    gated = {n: measure(n, "gram-gate") for n in sizes}
    elapsed = time.perf_counter() - start

    label_width = 38
    col = 11
    header = "call".ljust(label_width) + "".join(f"N = {n}".rjust(col) + "before".rjust(col) for n in sizes)
    rule = "-" * len(header)
    print("SecCL on-chain cost: gas used by each contract call in one full round (embedded EVM)")
    print(f"gas units; mean where a call repeats; N participants, M = ceil({FRACTION}·N) elected;")
    print("'before' is the contracts at e5043f8, before issue 22's reveal phase (see BEFORE)")
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
    per_participant = {n: round(totals[n] / n) for n in sizes}
    summary: tuple[tuple[str, dict[int, int], dict[int, int]], ...] = (
        ("per participant per round", per_participant, old_per_participant),
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
    print("The gram-gate election (issue 23) in the same round: its own consensus contract, ballots that")
    print("state the filter's view, a median count at the tally; every other call is the same.")
    print(header.replace("before", "Borda "))
    print(rule)
    gated_totals = {n: sum(sum(gated[n][key]) for key in PER_ROUND) for n in sizes}
    for label, key in (
        ("deploy consensus", "deploy_consensus"),
        ("submitScores", "submit_scores"),
        ("tally", "tally"),
    ):
        print(
            label.ljust(label_width)
            + "".join(_cell(mean(gated[n][key]), col) + _cell(mean(results[n][key]), col) for n in sizes)
        )
    print(
        "per participant per round".ljust(label_width)
        + "".join(_cell(round(gated_totals[n] / n), col) + _cell(per_participant[n], col) for n in sizes)
    )
    print()
    print("Per round = N·postUpdate + N·revealUpdate + N·submitScores + tally + postModel (round 1 opens")
    print("at deployment, each later one when postModel lands; proveInvalid is paid only for an invalid")
    print("update, by whoever proves it). The reveal is almost all calldata, at the floor price of")
    print("EIP-7623 (Prague: 40 gas a non-zero byte, 10 a zero byte), which both EVMs here apply.")
    print()
    for n in sizes:
        wei = per_participant[n] * GWEI_PRICE * 10**9
        ether = wei / 1e18
        print(
            f"N = {n}: a participant's round would cost {ether:.5f} ETH (about ${ether * ETH_USD:,.2f}) on a "
            f"public chain at {GWEI_PRICE} gwei and ${ETH_USD:,} an ether; on the consortium's own chain, "
            "block space only"
        )
    print(f"(measured in {elapsed:.1f} s of wall time)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
