"""Gas of every contract call in one full SecCL round on the embedded EVM, for N = 10, 30, 100."""

from __future__ import annotations

import random
import sys
import time
from collections import defaultdict

import numpy as np
from eth_account import Account
from eth_utils import keccak

from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.consensus import ConsensusClient
from seccl.election import borda_tally, candidate_count
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.messages import EvaluationMessage, ModelMessage, UpdateMessage

SIZES = (10, 30, 100)
FRACTION = 0.2  # the paper's l: M = ceil(l·N) candidates
SEED = 2024
DIMENSION = 10_000  # a small model: the digest, not the payload, goes on chain
KEEP = 1_000  # coordinates per sparse update (s = 0.1)
ROUND = 1

ROWS = (
    ("deploy board", "deploy_board"),
    ("deploy consensus", "deploy_consensus"),
    ("openRound", "open_round"),
    ("post update", "post_update"),
    ("post evaluation", "post_evaluation"),
    ("openElection", "open_election"),
    ("submitScores", "submit_scores"),
    ("tally", "tally"),
    ("post model", "post_model"),
)
PER_ROUND = (
    "open_round",
    "post_update",
    "post_evaluation",
    "open_election",
    "submit_scores",
    "tally",
    "post_model",
)


def measure(n: int) -> dict[str, list[int]]:
    """Deploy a session of ``n`` participants and run one round; the gas of every call, by call."""
    rng = random.Random(SEED + n)
    np_rng = np.random.default_rng(SEED + n)
    m = candidate_count(FRACTION, n)
    backend = EmbeddedChain()
    w3 = backend.connect()
    server = backend.server_account()
    # eth-tester's default accounts have the private keys 1, 2, 3, ...: the server is key 1.
    server_key = Account.from_key((1).to_bytes(32, "big"))
    if server_key.address != server:
        raise SystemExit(f"the embedded server {server} is not eth-tester's key 1")
    accounts = [Account.from_key(keccak(text=f"seccl-bench-{n}-{i}")) for i in range(n)]
    gas: dict[str, list[int]] = defaultdict(list)

    board, receipt = BulletinBoardClient.deploy(
        w3, server=server, participants=[a.address for a in accounts]
    )
    gas["deploy_board"].append(receipt.gas_used)
    consensus, receipt = ConsensusClient.deploy(
        w3, server=server, board=board.address, candidates=m
    )
    gas["deploy_consensus"].append(receipt.gas_used)

    gas["open_round"].append(board.open_round(ROUND).gas_used)
    for account in accounts:
        indices = np.sort(np_rng.choice(DIMENSION, KEEP, replace=False))
        values = np_rng.normal(0.0, 0.01, KEEP)
        message = UpdateMessage(ROUND, account.address, SparseUpdate(DIMENSION, indices, values))
        digest = message.digest()
        signature = board.sign(account, ROUND, MessageKind.UPDATE, digest)
        receipt = board.post(ROUND, MessageKind.UPDATE, account.address, digest, signature)
        gas["post_update"].append(receipt.gas_used)

    # Macro-F1 scores in parts per million, distinct-ish; a voter's own entry is zero.
    scores = [
        tuple(0 if j == i else rng.randint(300_000, 990_000) for j in range(n)) for i in range(n)
    ]
    signatures: list[bytes] = []
    for i, account in enumerate(accounts):
        digest = EvaluationMessage(ROUND, account.address, scores[i]).digest()
        signature = board.sign(account, ROUND, MessageKind.EVALUATION, digest)
        signatures.append(signature)
        receipt = board.post(ROUND, MessageKind.EVALUATION, account.address, digest, signature)
        gas["post_evaluation"].append(receipt.gas_used)

    now = int(w3.eth.get_block("latest")["timestamp"])
    gas["open_election"].append(consensus.open_election(ROUND, now + 3600).gas_used)
    for i, account in enumerate(accounts):
        receipt = consensus.submit_scores(ROUND, account.address, scores[i], signatures[i])
        gas["submit_scores"].append(receipt.gas_used)
    record = consensus.tally(ROUND, n=n)
    tally_receipt = w3.eth.get_transaction_receipt(record.tx_hash)  # type: ignore[arg-type]
    gas["tally"].append(int(tally_receipt["gasUsed"]))
    expected = borda_tally(dict(enumerate(scores)), n, m).candidates
    if record.candidates != expected:
        raise SystemExit(f"N = {n}: the contract elected {record.candidates}, expected {expected}")

    params = np_rng.normal(0.0, 0.1, DIMENSION).astype(np.float32)
    digest = ModelMessage(ROUND, server, params).digest()
    signature = board.sign(server_key, ROUND, MessageKind.MODEL, digest)
    gas["post_model"].append(
        board.post(ROUND, MessageKind.MODEL, server, digest, signature).gas_used
    )
    return gas


def mean(values: list[int]) -> int:
    return round(sum(values) / len(values))


def main() -> int:
    start = time.perf_counter()
    results = {n: measure(n) for n in SIZES}
    elapsed = time.perf_counter() - start

    label_width = 34
    col = 12
    header = "call".ljust(label_width) + "".join(f"N = {n}".rjust(col) for n in SIZES)
    rule = "-" * len(header)
    print("SecCL on-chain cost: gas used by each contract call in one full round (embedded EVM)")
    print(f"gas units; mean where a call repeats; N participants, M = ceil({FRACTION}·N) elected")
    print()
    print(header)
    print(rule)
    print(
        "M (candidates)".ljust(label_width)
        + "".join(f"{candidate_count(FRACTION, n):>{col}}" for n in SIZES)
    )
    print(rule)
    for label, key in ROWS:
        print(label.ljust(label_width) + "".join(f"{mean(results[n][key]):>{col},}" for n in SIZES))
    print(rule)
    totals = {n: sum(sum(results[n][key]) for key in PER_ROUND) for n in SIZES}
    deploys = {n: results[n]["deploy_board"][0] + results[n]["deploy_consensus"][0] for n in SIZES}
    summary = (
        ("per participant per round", {n: round(totals[n] / n) for n in SIZES}),
        ("total per round", totals),
        ("deploy (board + consensus, once)", deploys),
    )
    for label, values in summary:
        print(label.ljust(label_width) + "".join(f"{values[n]:>{col},}" for n in SIZES))
    print()
    print(
        "Per round = openRound + N·post update + N·post evaluation + openElection "
        "+ N·submitScores + tally + post model."
    )
    print(f"(measured in {elapsed:.1f} s of wall time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
