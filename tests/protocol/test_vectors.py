"""The protocol's test vectors (tests/vectors/, written by scripts/make_test_vectors.py).

Each vector is recomputed here from its inputs with the project's code (messages, proofs of
invalidity, signing, statements and commitments, salts and tie seeds, the election, aggregation,
sparse selection, θ_0), so a vector can never say something the code does not do; the generator's
output must equal the committed files byte for byte; the encoded logs, the round's tie seed, the
update format and the refused signature forms are replayed on the real contracts (embedded EVM);
and docs/PROTOCOL.md must list every function and event of the contracts' ABI.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.types import Nonce
from web3.utils.address import get_create_address

import seccl.protocol.errors as protocol_errors
from seccl.chain.accounts import fund, signing_connection
from seccl.chain.artifacts import CONTRACT_NAMES, load_artifact
from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import MessageKind, Phases, UpdateFormat
from seccl.chain.errors import BulletinInvalidSignature, BulletinProofRefuted
from seccl.chain.session import SessionTerms, deploy_session
from seccl.chain.signing import DELIVERY_KIND, RECEIPT_KIND, SigningDomain
from seccl.chain.transactions import call
from seccl.election import ABSTAIN, borda_tally, tie_key, voter_ranking
from seccl.election.gram_gate import ballot_error, election_bar, gram_gate_tally, view_digest, view_of_ballot
from seccl.learning.aggregation import aggregate
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import SparseUpdate, delta, select_top_fraction, update_size
from seccl.protocol.envelope import Commitment, SignedMessage, sign_message
from seccl.protocol.messages import (
    EvaluationMessage,
    ModelMessage,
    UpdateMessage,
    decode_message,
    invalid_entry,
    score_to_ppm,
)
from seccl.protocol.statements import Delivery, Receipt
from seccl.roles.participant_state import ParticipantState

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
PROTOCOL = ROOT / "docs" / "PROTOCOL.md"
HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def raw(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.removeprefix("0x"))


def hx(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def f32(hex_text: str) -> np.ndarray:
    """Big-endian float32 bytes (the vectors' exact form of every float) as a float32 array."""
    return np.frombuffer(raw(hex_text), dtype=">f4").astype(np.float32)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return np.asarray(a, dtype=">f4").tobytes() == np.asarray(b, dtype=">f4").tobytes()


def domain_of(document: dict[str, Any]) -> SigningDomain:
    d = document["domain"]
    return SigningDomain(d["chain_id"], d["board"], d["consensus"], raw(d["nonce"]))


def keys() -> dict[str, Any]:
    """The public test keys of signatures.json, by name ('server', 'participant 0', ...)."""
    return {k["name"]: Account.from_key(raw(k["private_key"])) for k in load("signatures.json")["keys"]}


def salt_key(private_key: bytes, board: str) -> bytes:
    """A deployed participant's salt key, as ParticipantState derives it from its private key."""
    return hmac.new(private_key, b"seccl-salt/" + raw(board), hashlib.sha256).digest()


def salt_of(key: bytes, round_: int) -> bytes:
    """The salt of ``round_`` for salt key ``key``: the participant's own method computes it."""
    return ParticipantState._salt(SimpleNamespace(_salt_key=key), round_)  # type: ignore[arg-type]


def round_seed(round_: int, revealed: list[int]) -> bytes:
    """The tie seed of ``round_`` when the test participants ``revealed`` revealed their updates on
    the vectors' board: the XOR of their salts (the board's rule; checked on its bytecode below)."""
    board = load("signatures.json")["domain"]["board"]
    accounts = keys()
    seed = bytes(32)
    for i in revealed:
        salt = salt_of(salt_key(bytes(accounts[f"participant {i}"].key), board), round_)
        seed = bytes(a ^ b for a, b in zip(seed, salt, strict=True))
    return seed


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_test_vectors", ROOT / "scripts" / "make_test_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_vectors_are_what_the_generator_writes(generator: ModuleType) -> None:
    built = generator.build()
    assert sorted(p.name for p in VECTORS.iterdir()) == sorted(built)
    for name, data in built.items():
        assert (VECTORS / name).read_bytes() == data, (
            f"tests/vectors/{name} is not what the reference code computes: if the change is meant, "
            "run `.venv/bin/python scripts/make_test_vectors.py` and say so in PROTOCOL.md"
        )
    for name in built:
        document = load(name)
        assert document["description"] and document["generated_by"].startswith("scripts/make_test_vectors.py")


# ─────────────── messages ───────────────


def message_from(v: dict[str, Any]) -> UpdateMessage | EvaluationMessage | ModelMessage:
    if v["kind"] == "update":
        values = f32(v["values_f32_be"])
        assert same_bits(np.asarray(v["values"], dtype=np.float32), values)
        update = SparseUpdate(v["dimension"], np.asarray(v["indices"]), values)
        return UpdateMessage(v["round"], v["author"], update, raw(v["salt"]))
    if v["kind"] == "evaluation":
        return EvaluationMessage(v["round"], v["author"], tuple(v["scores"]))
    params = f32(v["params_f32_be"])
    assert same_bits(np.asarray(v["params"], dtype=np.float32), params)
    return ModelMessage(v["round"], v["author"], params)


def check_message_vector(v: dict[str, Any]) -> None:
    message = message_from(v)
    data = message.to_bytes()
    assert hx(data) == v["bytes"] and len(data) == v["length"], v["name"]
    assert hx(hashlib.sha256(data).digest()) == v["sha256"] == hx(message.digest())
    decoded = decode_message(data)
    assert (decoded.round, decoded.author, decoded.kind) == (message.round, message.author, message.kind)
    assert decoded.to_bytes() == data
    assert data[4] == 4  # version 4
    if isinstance(message, UpdateMessage):
        assert isinstance(decoded, UpdateMessage) and decoded.salt == raw(v["salt"]) == data[34:66]


def test_messages() -> None:
    document = load("messages.json")
    assert len(document["vectors"]) >= 6 and {v["kind"] for v in document["vectors"]} == {
        "update",
        "evaluation",
        "model",
    }
    for v in document["vectors"]:
        check_message_vector(v)
        if v["kind"] == "update":  # the bound's edge, -0.0 and subnormals are allowed
            decode_message(raw(v["bytes"]), dimension=v["dimension"], max_abs_value=10.0)
    bounds = document["bounds"]
    for case in document["invalid"]:
        with pytest.raises(protocol_errors.ProtocolError) as caught:
            decode_message(raw(case["bytes"]), **bounds)
        assert type(caught.value) is getattr(protocol_errors, case["error"]), case["name"]


def test_invalid_entries() -> None:
    """The entry a proof of invalidity names (invalid_entry, the board's rule) for updates in the
    board's format; decoding under the same bounds fails exactly when there is one."""
    section = load("messages.json")["invalid_entries"]
    f = section["format"]
    update_format = UpdateFormat(f["dimension"], f["update_size"], f["max_abs_value"])
    assert f"0x{update_format.value_bound_bits:08x}" == f["value_bound_bits"]
    bounds = {
        "dimension": f["dimension"],
        "update_size": f["update_size"],
        "max_abs_value": f["max_abs_value"],
    }
    positions = set()
    for v in section["vectors"]:
        data = raw(v["bytes"])
        k = f["update_size"]
        assert len(data) == 34 + 32 + 8 + 8 * k and data[:6] == b"SCCL\x04\x00"
        assert data[66:74] == f["dimension"].to_bytes(4, "big") + k.to_bytes(4, "big")
        assert [int.from_bytes(data[74 + 4 * j : 78 + 4 * j], "big") for j in range(k)] == v["indices"]
        assert ["0x" + data[74 + 4 * (k + j) : 78 + 4 * (k + j)].hex() for j in range(k)] == v["value_bits"]
        assert invalid_entry(data, **bounds) == v["position"], v["name"]
        positions.add(v["position"])
        if v["position"] is None:
            assert v["decoding_error"] is None
            decode_message(data, **bounds)
        else:
            with pytest.raises(protocol_errors.ProtocolError) as caught:
                decode_message(data, **bounds)
            assert type(caught.value).__name__ == v["decoding_error"], v["name"]
    assert positions == {None, 0, 1, 2}


# ─────────────── signatures and statements ───────────────


def test_the_test_keys_and_domain_are_what_they_say() -> None:
    document = load("signatures.json")
    for k in document["keys"]:
        assert "PUBLIC TEST KEY" in k["warning"]
        assert raw(k["private_key"]) == keccak(text=f"SecCL public test-vector key: {k['name']}")
        assert Account.from_key(raw(k["private_key"])).address == k["address"]
    server = keys()["server"].address
    d = document["domain"]
    assert d["board"] == get_create_address(server, Nonce(0))
    assert d["consensus"] == get_create_address(server, Nonce(1))
    assert raw(d["nonce"]) == hashlib.sha256(b"SecCL test vectors: session nonce").digest()
    assert "tie_seed" not in d  # no session tie seed: each round's comes from its reveals


def check_signing(domain: SigningDomain, v: dict[str, Any], signer: Any) -> None:
    digest = raw(v["digest"])
    preimage = encode(
        ["uint256", "address", "address", "bytes32", "uint64", "uint8", "bytes32"],
        [domain.chain_id, domain.board, domain.consensus, domain.nonce, v["round"], v["kind"], digest],
    )
    assert hx(preimage) == v["abi_encoded"] and len(preimage) == 7 * 32
    signed_hash = domain.signed_hash(v["round"], v["kind"], digest)
    assert hx(signed_hash) == v["signed_hash"] == hx(keccak(preimage))
    assert hx(keccak(b"\x19Ethereum Signed Message:\n32" + signed_hash)) == v["eip191_hash"]
    signature = domain.sign(signer, v["round"], v["kind"], digest)
    assert hx(signature) == v["signature"] == v["r"] + v["s"][2:] + f"{v['v']:02x}", v["name"]
    assert v["v"] in (27, 28) and int(v["s"], 16) <= HALF_N
    assert domain.signer(v["round"], v["kind"], digest, signature) == v["signer"] == signer.address


def test_signatures() -> None:
    document = load("signatures.json")
    domain, accounts = domain_of(document), keys()
    by_address = {a.address: a for a in accounts.values()}
    for v in document["vectors"]:
        check_signing(domain, v, by_address[v["signer"]])
    update = load("messages.json")["vectors"][0]
    assert document["vectors"][0]["digest"] == update["sha256"]  # the same update, committed
    assert (
        hx(hashlib.sha256(raw(document["vectors"][1]["message"])).digest())
        == document["vectors"][1]["digest"]
    )
    first = raw(document["vectors"][0]["signature"])
    assert [raw(r["signature"]) for r in document["refused"]] == malleated(first)


def malleated(signature: bytes) -> list[bytes]:
    """The three refused forms of a canonical signature: v as 0/1, high s, 64-byte compact."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    n = 2 * HALF_N + 1
    return [
        signature[:64] + bytes([v - 27]),
        r + (n - s).to_bytes(32, "big") + bytes([55 - v]),
        r + (s | ((v - 27) << 255)).to_bytes(32, "big"),
    ]


def test_statements() -> None:
    document = load("statements.json")
    domain, server = domain_of(document), keys()["server"]
    by_author = {a.address: a for a in keys().values()}
    for v in document["updates"] + [document["model"]]:
        check_message_vector(v)
    for v in document["vectors"]:
        if v["statement"] == "delivery":
            d = Delivery.from_dict(v["json"])
            statement: Delivery | Receipt = d
            preimage = encode(
                ["uint8", "address", "address[]", "bytes32[]"],
                [int(d.kind), d.recipient, list(d.authors), list(d.digests)],
            )
            again = Delivery.sign(server, domain, d.round, d.kind, d.recipient, d.authors, d.digests)
            assert v["signed_kind"] == DELIVERY_KIND
        else:
            r = Receipt.from_dict(v["json"])
            statement = r
            tx = raw(r.tx_id) if r.tx_id else b"\x00" * 32
            preimage = encode(
                ["uint8", "address", "bytes32", "bytes32"], [int(r.kind), r.author, r.digest, tx]
            )
            again = Receipt.sign(server, domain, r.round, r.kind, r.author, r.digest, r.tx_id)
            assert v["signed_kind"] == RECEIPT_KIND
        assert hx(preimage) == v["abi_encoded"], v["name"]
        assert hx(statement.statement()) == v["statement_digest"] == hx(keccak(preimage))
        assert (
            hx(domain.signed_hash(statement.round, v["signed_kind"], statement.statement()))
            == v["signed_hash"]
        )
        assert again.to_dict() == v["json"], v["name"]  # deterministic signature
        assert statement.signer(domain) == server.address
    deliveries = [v for v in document["vectors"] if v["statement"] == "delivery"]
    assert deliveries and all(v["json"]["kind"] == "model" for v in deliveries)  # updates are never delivered
    for model in deliveries:
        assert model["json"]["round"] == document["model"]["round"]  # θ_{r-1}'s delivery signs its round
        assert model["json"]["authors"] == [server.address]
        assert model["json"]["digests"] == [document["model"]["sha256"]]
    updates = {u["author"]: u for u in document["updates"]}
    for c in document["commitments"]:
        commitment = Commitment.from_dict(c["json"])
        update = updates[commitment.author]
        assert hx(commitment.digest) == c["update_sha256"] == update["sha256"]
        assert c["signed_kind"] == int(MessageKind.UPDATE)
        assert (
            hx(domain.signed_hash(commitment.round, c["signed_kind"], commitment.digest)) == c["signed_hash"]
        )
        assert commitment.signer(domain) == c["signer"] == commitment.author, c["name"]
        again = Commitment.of(SignedMessage(raw(update["bytes"]), commitment.signature))
        assert again.to_dict() == c["json"]
        message = decode_message(raw(update["bytes"]))
        assert Commitment.of(sign_message(message, by_author[commitment.author], domain)) == commitment


# ─────────────── salts, tie seeds, ballots and elections ───────────────


def test_ties() -> None:
    document = load("ties.json")
    accounts = keys()
    board = load("signatures.json")["domain"]["board"]
    assert document["board"] == board
    for entry in document["salts"]:
        account = accounts[f"participant {entry['participant']}"]
        assert account.address == entry["address"]
        key = salt_key(bytes(account.key), board)
        assert hx(key) == entry["salt_key"]
        for round_, salt in entry["rounds"].items():
            assert hx(salt_of(key, int(round_))) == salt
    for entry in document["simulation"]:
        key = hashlib.sha256(f"seccl-salts/{entry['seed']}/{entry['participant']}".encode()).digest()
        assert hx(key) == entry["salt_key"] and hx(salt_of(key, entry["round"])) == entry["salt"]
    salts = {(e["participant"], int(r)): s for e in document["salts"] for r, s in e["rounds"].items()}
    for v in document["vectors"]:
        round_, n = v["round"], v["n"]
        assert v["salts"] == [salts[(i, round_)] for i in v["revealed"]]
        seed = round_seed(round_, v["revealed"])
        assert hx(seed) == v["tie_seed"], v["name"]
        keys_ = [tie_key(seed, round_, i) for i in range(n)]
        assert v["tie_keys"] == [hx(k.to_bytes(32, "big")) for k in keys_]
        assert v["tie_order"] == sorted(range(n), key=lambda i: keys_[i])
    assert document["vectors"][-1]["tie_seed"] == hx(bytes(32))  # no reveal, no seed
    # Every update vector carries its author's salt of its round on the vectors' board.
    by_address = {entry["address"]: entry for entry in document["salts"]}
    for u in load("messages.json")["vectors"] + load("statements.json")["updates"]:
        if u["kind"] == "update":
            assert by_address[u["author"]]["rounds"][str(u["round"])] == u["salt"]


def test_ballots() -> None:
    document = load("ballots.json")
    for case in document["ppm"]:
        assert score_to_ppm(case["f1"]) == case["ppm"] and case["f1"] * 1e6 == case["f1_times_1e6"]
    domain = domain_of(document)
    accounts = keys()
    for v in document["vectors"]:
        n, voter, round_ = v["n"], v["voter"], v["round"]
        tie_seed = round_seed(round_, v["revealed"])
        assert hx(tie_seed) == v["tie_seed"], v["name"]
        assert v["eligible"] == [j for j in v["revealed"] if j not in v["invalid"]]
        scores = tuple(
            0 if j in v["invalid"] else ABSTAIN if f is None else score_to_ppm(f)
            for j, f in enumerate(v["f1"])
        )
        assert list(scores) == v["scores"] and scores[voter] == ABSTAIN
        message = EvaluationMessage(round_, v["voter_address"], scores)
        assert hx(message.to_bytes()) == v["message"] and hx(message.to_bytes()[34:]) == v["body"]
        assert len(raw(v["body"])) == 4 * n and hx(message.digest()) == v["digest"]
        assert v["tie_keys"] == [hx(tie_key(tie_seed, round_, i).to_bytes(32, "big")) for i in range(n)]
        ranking = voter_ranking(
            scores, voter, v["m"], tie_seed=tie_seed, round_=round_, eligible=v["eligible"]
        )
        assert list(ranking) == v["ranking"] and hx(bytes(ranking)) == v["ranking_bytes"], v["name"]
        account = accounts[f"participant {voter}"]
        assert account.address == v["voter_address"]
        signature = domain.sign(account, round_, int(MessageKind.EVALUATION), message.digest())
        assert hx(signature) == v["signature"]
        consensus = Web3().eth.contract(abi=load_artifact("Consensus").abi)
        calldata = consensus.encode_abi(
            "submitScores", args=[round_, v["voter_address"], raw(v["body"]), bytes(ranking), signature]
        )
        assert calldata == v["submitScores_calldata"]


def test_elections() -> None:
    document = load("elections.json")
    assert len(document["vectors"]) >= 8
    for v in document["vectors"]:
        n, m, round_, eligible = v["n"], v["m"], v["round"], v["eligible"]
        tie_seed = round_seed(round_, v["revealed"])
        assert hx(tie_seed) == v["tie_seed"], v["name"]
        assert eligible == [j for j in v["revealed"] if j not in v["invalid"]]
        ballots = {b["voter"]: b["scores"] for b in v["ballots"]}
        assert all(scores[voter] == ABSTAIN for voter, scores in ballots.items())
        outcome = borda_tally(ballots, n, m, tie_seed=tie_seed, round_=round_, eligible=eligible)
        assert list(outcome.candidates) == v["candidates"], v["name"]
        assert list(outcome.totals) == v["points"] and list(outcome.assessors) == v["assessors"]
        others = [len(ballots) - (i in ballots) for i in range(n)]
        assert others == v["other_ballots"]
        assert v["abstentions"] == [others[i] - v["assessors"][i] if i in eligible else 0 for i in range(n)]
        assert v["electable"] == [i for i in eligible if ballots and 2 * v["assessors"][i] > others[i]]
        assert v["rankings"] == [
            {
                "voter": voter,
                "ranking": list(
                    voter_ranking(s, voter, m, tie_seed=tie_seed, round_=round_, eligible=eligible)
                ),
            }
            for voter, s in sorted(ballots.items())
        ]
        assert v["tie_keys"] == [hx(tie_key(tie_seed, round_, i).to_bytes(32, "big")) for i in range(n)]
        assert raw(v["elected_record"]) == bytes([len(v["candidates"]), *v["candidates"]])
        assert v["counter_bits"] == (8 if m * (n - 1) < 256 else 16)


def test_gram_gate_elections() -> None:
    document = load("gram_gate_elections.json")
    assert len(document["vectors"]) >= 4
    for v in document["vectors"]:
        n, m, round_ = v["n"], v["m"], v["round"]
        tie_seed = raw(v["tie_seed"])
        ballots = {b["voter"]: b["entries"] for b in v["ballots"]}
        for b in v["ballots"]:
            assert ballot_error(b["entries"], b["voter"], 2**n - 1) is None, v["name"]
            kept, dropped = view_of_ballot(b["entries"], b["voter"])
            assert b["view"] == {"kept": kept, "dropped": dropped, "key": hx(view_digest(kept, dropped))}
        outcome = gram_gate_tally(ballots, n, m, eligible=2**n - 1, tie_seed=tie_seed, round_=round_)
        agreed = v["agreed_view"]
        assert outcome.agreed == (None if agreed is None else (agreed["kept"], agreed["dropped"])), v["name"]
        assert {int(j): median for j, median in v["medians"].items()} == dict(outcome.medians)
        assert v["bar"] == (election_bar(list(outcome.medians.values())) if outcome.medians else None)
        assert list(outcome.candidates) == v["candidates"], v["name"]
        assert raw(v["elected_record"]) == bytes([1, *v["candidates"]])
    # The profiles cover: a minority view, dropped voters, a candidate under the bar, the M floor,
    # no majority.
    assert any(v["agreed_view"] is None for v in document["vectors"])
    assert any(v["bar"] is not None and len(v["candidates"]) < len(v["medians"]) for v in document["vectors"])


# ─────────────── aggregation, sparse updates, θ_0 ───────────────


def test_aggregation() -> None:
    for v in load("aggregation.json")["vectors"]:
        params = f32(v["params_f32_be"])
        assert same_bits(np.asarray(v["params"], dtype=np.float32), params)
        updates = []
        for u in v["updates"]:
            values = f32(u["values_f32_be"])
            assert same_bits(np.asarray(u["values"], dtype=np.float32), values)
            update = SparseUpdate(u["dimension"], np.asarray(u["indices"]), values)
            key = np.asarray(u["indices"], dtype="<u4").tobytes() + values.astype("<f4").tobytes()
            assert hx(key) == u["sort_key"]
            updates.append(update)
        assert v["canonical_order"] == sorted(
            range(len(updates)), key=lambda i: raw(v["updates"][i]["sort_key"])
        )
        result = aggregate(params, updates, rule=v["rule"])
        assert np.asarray(result, dtype=">f4").tobytes().hex() == v["result_f32_be"][2:], v["name"]
        assert same_bits(np.asarray(v["result"], dtype=np.float32), result)
        assert hx(hashlib.sha256(np.asarray(result, dtype=">f4").tobytes()).digest()) == v["result_sha256"]
        # The same bits whatever order the updates come in.
        assert same_bits(aggregate(params, updates[::-1], rule=v["rule"]), result)


def test_sparse() -> None:
    document = load("sparse.json")
    for v in document["sizes"]:
        assert update_size(v["fraction"], v["dimension"]) == v["k"], v
        assert v["fraction"] * v["dimension"] == v["product"]
    for v in document["selection"]:
        d = delta(np.asarray(v["local"], dtype=np.float32), np.asarray(v["global"], dtype=np.float32))
        assert np.asarray(d, dtype=">f4").tobytes().hex() == v["delta_f32_be"][2:]
        picked = select_top_fraction(d, v["fraction"])
        assert len(picked) == v["k"] == update_size(v["fraction"], len(d))
        assert [int(i) for i in picked.indices] == v["indices"], v["name"]
        assert same_bits(picked.values, np.asarray(v["values"], dtype=np.float32))


def test_theta0(generator: ModuleType) -> None:
    document = load("theta0.json")
    server = keys()["server"]
    assert document["generator"]["draws"] == 46_830
    for v in document["seeds"]:
        theta = get_flat_params(build_model(v["seed"]))
        digest = hashlib.sha256(np.asarray(theta, dtype=">f4").tobytes()).digest()
        assert hx(digest) == v["sha256_f32_be"], (
            f"θ_0 of seed {v['seed']} differs from the vector: this PyTorch or CPU kernel computes "
            "another θ_0 (see docs/PROTOCOL.md, 'θ_0'), so a session made elsewhere would be refused here"
        )
        assert len(theta) == v["dimension"] == 46_970
        assert theta[:8].astype(">f4").tobytes().hex() == v["first_params_f32_be"][2:]
        assert same_bits(theta[:8], np.asarray(v["first_params"], dtype=np.float32))
        for layer in document["layers"]:
            assert float(theta[layer["offset"]]) == v["first_of_each_tensor"][layer["name"]]
        assert (
            hx(ModelMessage(0, server.address, theta).digest()) == v["initial_model_digest_for_test_server"]
        )
        # The description in docs/PROTOCOL.md reproduces PyTorch bit for bit, without PyTorch.
        assert same_bits(generator.theta0_without_torch(v["seed"]), theta)
        twice = generator.theta0_without_torch(v["seed"], fused=False)
        assert (
            hx(hashlib.sha256(twice.astype(">f4").tobytes()).digest()) == v["sha256_f32_be_if_rounded_twice"]
        )
        assert int((twice != theta).sum()) == v["params_that_differ_if_rounded_twice"] > 0
    assert list(generator.mt19937_outputs(0, 5)) == document["mt19937_seed_0"]
    shapes = [(name, tuple(p.shape)) for name, p in build_model(0).named_parameters()]
    assert shapes == [(layer["name"], tuple(layer["shape"])) for layer in document["layers"]]


# ─────────────── the contracts' interface ───────────────


def _canonical(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_canonical(c) for c in param["components"]) + ")" + kind[len("tuple") :]
    return kind


def test_abi() -> None:
    document = load("abi.json")
    for name in CONTRACT_NAMES:
        abi = load_artifact(name).abi
        listed = document["contracts"][name]
        for kind, key in (("function", "functions"), ("event", "events"), ("error", "errors")):
            items = [i for i in abi if i["type"] == kind]
            signatures = sorted(
                f"{i['name']}(" + ",".join(_canonical(p) for p in i["inputs"]) + ")" for i in items
            )
            assert [entry["signature"] for entry in listed[key]] == signatures, (name, kind)
            for entry in listed[key]:
                hashed = keccak(text=entry["signature"])
                assert (
                    (entry["topic0"] == hx(hashed))
                    if kind == "event"
                    else (entry["selector"] == hx(hashed[:4]))
                )


def test_protocol_md_lists_every_function_and_event() -> None:
    """PROTOCOL.md names each external function and event with its exact ABI types (and which
    event parameters are indexed), as `name(type name, ...)`."""
    text = PROTOCOL.read_text(encoding="utf-8")
    for name in CONTRACT_NAMES:
        for item in load_artifact(name).abi:
            if item["type"] not in ("function", "event"):
                continue
            params = ", ".join(
                f"{_canonical(p)}{' indexed' if p.get('indexed') else ''} {p['name']}".strip()
                for p in item["inputs"]
            )
            written = f"{item['name']}({params})"
            assert written in text, f"docs/PROTOCOL.md does not list {name}.{written}"


def test_the_contracts_emit_the_example_logs_and_refuse_the_refused_signatures() -> None:
    """On the real bytecode (embedded EVM), with the test keys, nonce and update format of the
    vectors: the board sits at the vectors' address; malleated signatures are refused; the logs of
    a commitment, a reveal, a ballot and an election are byte for byte abi.json's examples, and so
    are the reveal's calldata, updateFormat() and tieSeedOf(1), the XOR of the revealed salts that
    ties.json and elections.json use; a proof against a valid entry is refuted; the tally is
    elections.json's."""
    accounts = keys()
    server = accounts["server"]
    participants = [accounts[f"participant {i}"] for i in range(4)]
    signatures = load("signatures.json")
    backend = EmbeddedChain()
    fund(backend, server.address)
    w3 = signing_connection(backend, server)
    terms = SessionTerms(
        server=server.address,
        participants=tuple(p.address for p in participants),
        candidates=2,
        nonce=raw(signatures["domain"]["nonce"]),
        phases=Phases(update=3600, ballot=3600, model=3600, reveal=3600),
        initial_model=hashlib.sha256(b"theta-0").digest(),
        update_format=UpdateFormat(dimension=10, update_size=3, max_abs_value=10.0),
    )
    board, consensus, _ = deploy_session(w3, terms)
    assert (board.address, consensus.address) == (
        signatures["domain"]["board"],
        signatures["domain"]["consensus"],
    )
    domain = SigningDomain(int(w3.eth.chain_id), board.address, consensus.address, terms.nonce)
    updates = load("statements.json")["updates"]
    digest = raw(updates[0]["sha256"])
    assert bytes(call(board.contract.functions.signedHash(1, 0, digest))) == domain.signed_hash(1, 0, digest)

    canonical = domain.sign(participants[0], 1, int(MessageKind.UPDATE), digest)
    post = board.contract.functions.postUpdate
    call(post(1, participants[0].address, digest, canonical), sender=server.address)  # accepted
    for bad in malleated(canonical):
        with pytest.raises(BulletinInvalidSignature) as refused:
            call(post(1, participants[0].address, digest, bad), sender=server.address)
        assert int(str(refused.value.fields["signer"]), 16) == 0

    examples = {e.get("event") or e["function"]: e for e in load("abi.json")["examples"]}

    def log_of(tx_hash: str, event: str) -> dict[str, Any]:
        topic0 = keccak(text=event)
        logs = [
            entry
            for entry in w3.eth.get_transaction_receipt(tx_hash)["logs"]
            if bytes(entry["topics"][0]) == topic0
        ]
        assert len(logs) == 1
        return {"topics": [hx(t) for t in logs[0]["topics"]], "data": hx(logs[0]["data"])}

    for i, (p, u) in enumerate(zip(participants, updates, strict=True)):
        d = raw(u["sha256"])
        tx = board.post_update(1, p.address, d, domain.sign(p, 1, int(MessageKind.UPDATE), d)).tx_hash
        if i == 0:
            got = log_of(tx, "MessagePosted(uint64,uint8,address,bytes32)")
            assert got == {k: examples["MessagePosted"][k] for k in ("topics", "data")}

    # Every participant committed: the reveals are open. The bytes travel in the calldata, each
    # sent by its author (only the author may reveal).
    for i, (p, u) in enumerate(zip(participants, updates, strict=True)):
        fund(backend, p.address)
        own = board.for_reader(signing_connection(backend, p), sender=p.address)
        tx = own.reveal_update(1, p.address, raw(u["bytes"])).tx_hash
        if i == 0:
            got = log_of(tx, "UpdateRevealed(uint64,address,bytes32)")
            assert got == {k: examples["UpdateRevealed"][k] for k in ("topics", "data")}
            assert hx(w3.eth.get_transaction(tx)["input"]) == examples["revealUpdate"]["calldata"]
    revealed = board.revealed_updates(1)
    assert {a: hx(r.message) for a, r in revealed.items()} == {u["author"]: u["bytes"] for u in updates}
    assert board.round_info(1).eligible == (0, 1, 2, 3)

    def view(name: str) -> str:
        return hx(w3.eth.call({"to": board.address, "data": examples[name]["calldata"]}))

    assert view("updateFormat") == examples["updateFormat"]["returns"]
    seed = examples["tieSeedOf"]["returns"]
    assert (
        view("tieSeedOf") == seed == hx(board.tie_seed_of(1)) == load("ties.json")["vectors"][0]["tie_seed"]
    )
    for position in range(3):  # every entry of a valid update is valid: each proof is refuted
        with pytest.raises(BulletinProofRefuted):
            call(
                board.contract.functions.proveInvalid(
                    1, participants[0].address, raw(updates[0]["bytes"]), position
                ),
                sender=server.address,
            )

    election = load("elections.json")["vectors"][0]
    assert election["tie_seed"] == seed
    ballot = load("ballots.json")["vectors"][0]
    assert (election["n"], election["m"], election["round"]) == (4, 2, 1)
    for entry, ranked in zip(election["ballots"], election["rankings"], strict=True):
        voter, scores = entry["voter"], tuple(entry["scores"])
        message = EvaluationMessage(1, participants[voter].address, scores)
        signature = domain.sign(participants[voter], 1, int(MessageKind.EVALUATION), message.digest())
        tx = consensus.submit_scores(
            1, participants[voter].address, scores, signature, ranking=ranked["ranking"]
        ).tx_hash
        if voter == ballot["voter"]:
            assert hx(message.digest()) == ballot["digest"]
            got = log_of(tx, "ScoresSubmitted(uint64,address,bytes32,bytes,bytes)")
            assert got == {k: examples["ScoresSubmitted"][k] for k in ("topics", "data")}
    tallied = consensus.tally(1, n=4)
    assert list(tallied.candidates) == election["candidates"]
    assert tallied.receipt is not None
    got = log_of(tallied.receipt.tx_hash, "CandidatesElected(uint64,uint16[],uint16)")
    assert got == {k: examples["CandidatesElected"][k] for k in ("topics", "data")}
    points, abstentions = consensus.totals_of(1)
    assert list(points) == election["points"] and list(abstentions) == election["abstentions"]
    assert list(consensus.elected_of(1)) == election["candidates"]

    # postUpdate's calldata example, in the vectors' own session (chain 31337).
    vector_domain = domain_of(signatures)
    example = (
        Web3()
        .eth.contract(abi=load_artifact("BulletinBoard").abi)
        .encode_abi(
            "postUpdate",
            args=[
                1,
                to_checksum_address(updates[0]["author"]),
                digest,
                vector_domain.sign(participants[0], 1, int(MessageKind.UPDATE), digest),
            ],
        )
    )
    assert example == examples["postUpdate"]["calldata"]
    abi = Web3().eth.contract(abi=load_artifact("BulletinBoard").abi)
    reveal = abi.encode_abi(
        "revealUpdate", args=[1, to_checksum_address(updates[0]["author"]), raw(updates[0]["bytes"])]
    )
    assert reveal == examples["revealUpdate"]["calldata"]
    nan = next(v for v in load("messages.json")["invalid_entries"]["vectors"] if v["name"] == "NaN value")
    proof = abi.encode_abi(
        "proveInvalid",
        args=[1, to_checksum_address(updates[0]["author"]), raw(nan["bytes"]), nan["position"]],
    )
    assert proof == examples["proveInvalid"]["calldata"]


def test_protocol_md_names_the_vectors() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    for name in sorted(p.name for p in VECTORS.iterdir()):
        assert f"`{name}`" in text, f"docs/PROTOCOL.md does not mention tests/vectors/{name}"
    assert re.search(r"tests/vectors/", text)
