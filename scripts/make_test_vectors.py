"""Write the protocol's test vectors (tests/vectors/*.json) from the reference code.

For implementers of docs/PROTOCOL.md in another language: each file holds inputs and the exact
outputs the reference implementation (this repository's `seccl` package) computes from them, one
file per kind: messages, signatures, statements, ties, ballots, elections, aggregation, sparse,
theta0 and abi. tests/protocol/test_vectors.py recomputes every vector with the project's code and checks
that this script's output equals the committed files, so the vectors cannot drift from the code.

Deterministic: no clock, no randomness; the keys are public test keys derived from fixed strings.
Running it again writes byte-identical files.

    .venv/bin/python scripts/make_test_vectors.py            # (re)write tests/vectors/
    .venv/bin/python scripts/make_test_vectors.py --check    # exit 1 if a committed file differs
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.types import Nonce
from web3.utils.address import get_create_address

from seccl.chain.artifacts import CONTRACT_NAMES, load_artifact
from seccl.chain.bulletin_board import MessageKind, UpdateFormat
from seccl.chain.signing import DELIVERY_KIND, RECEIPT_KIND, SigningDomain
from seccl.election import ABSTAIN, borda_tally, tie_key, voter_ranking
from seccl.election.gram_gate import (
    DROPPED,
    REJECTED,
    election_bar,
    gram_gate_tally,
    view_digest,
    view_of_ballot,
)
from seccl.learning.aggregation import aggregate
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import SparseUpdate, delta, select_top_fraction, update_size
from seccl.protocol.envelope import Commitment, sign_message
from seccl.protocol.errors import ProtocolError
from seccl.protocol.messages import (
    SALT_BYTES,
    EvaluationMessage,
    ModelMessage,
    UpdateMessage,
    decode_message,
    invalid_entry,
    score_to_ppm,
)
from seccl.protocol.statements import Delivery, Receipt

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors"
GENERATED_BY = "scripts/make_test_vectors.py (recomputed and compared by tests/protocol/test_vectors.py)"

# ─────────────── the public test identities and session ───────────────

PUBLIC_TEST_KEY = (
    "PUBLIC TEST KEY: published in this repository for test vectors only; anyone can sign with it. "
    "Never send value to its address or trust anything it signs outside these tests."
)


def public_test_key(name: str) -> bytes:
    """The private key of test identity ``name``: keccak256 of a fixed, public ASCII string."""
    return keccak(text=f"SecCL public test-vector key: {name}")


SERVER: LocalAccount = Account.from_key(public_test_key("server"))
PARTICIPANTS: list[LocalAccount] = [Account.from_key(public_test_key(f"participant {i}")) for i in range(5)]
CHAIN_ID = 31337  # anvil's default, the chain `seccl run` uses
BOARD = str(get_create_address(SERVER.address, Nonce(0)))  # the server deploys the board first...
CONSENSUS = str(get_create_address(SERVER.address, Nonce(1)))  # ...then the consensus contract
NONCE = hashlib.sha256(b"SecCL test vectors: session nonce").digest()
DOMAIN = SigningDomain(CHAIN_ID, BOARD, CONSENSUS, NONCE)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def f32_hex(values: Any) -> str:
    """Big-endian IEEE-754 binary32 bytes, as the messages carry them."""
    return "0x" + np.asarray(values, dtype=">f4").tobytes().hex()


def f32_values(values: Any) -> list[float]:
    """The float32 values as JSON numbers (each the exact value of its float32, printed shortest)."""
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def f32_from_bits(bits: int) -> float:
    return float(np.frombuffer(bits.to_bytes(4, "big"), dtype=">f4")[0])


def _document(description: str, **content: Any) -> dict[str, Any]:
    return {"description": description, "generated_by": GENERATED_BY, **content}


def keys_section() -> list[dict[str, Any]]:
    named = [("server", SERVER), *((f"participant {i}", a) for i, a in enumerate(PARTICIPANTS))]
    return [
        {
            "name": name,
            "index": None if name == "server" else int(name.split()[1]),
            "private_key": _hex(public_test_key(name)),
            "derivation": f'keccak256("SecCL public test-vector key: {name}")',
            "address": account.address,
            "warning": PUBLIC_TEST_KEY,
        }
        for name, account in named
    ]


def domain_section() -> dict[str, Any]:
    return {
        "chain_id": CHAIN_ID,
        "board": BOARD,
        "board_derivation": "the test server's CREATE address at nonce 0: keccak256(rlp([server, 0]))[12:]",
        "consensus": CONSENSUS,
        "consensus_derivation": "the test server's CREATE address at nonce 1",
        "nonce": _hex(NONCE),
        "nonce_derivation": 'sha256("SecCL test vectors: session nonce")',
    }


# ─────────────── salts: each participant's share of a round's tie seed ───────────────


def salt_key(index: int) -> bytes:
    """Participant ``index``'s salt key in a deployment (seccl.roles.participant_state): HMAC-SHA256
    keyed by its private key, of "seccl-salt/" and the board's 20 address bytes."""
    context = b"seccl-salt/" + bytes.fromhex(BOARD[2:])
    return hmac.new(bytes(PARTICIPANTS[index].key), context, hashlib.sha256).digest()


def simulation_salt_key(seed: int, index: int) -> bytes:
    """The salt key a simulation (`seccl run --seed`) gives participant ``index`` instead, so that
    a run repeats bit for bit (seccl.runtime.simulation)."""
    return hashlib.sha256(f"seccl-salts/{seed}/{index}".encode()).digest()


def salt_from_key(key: bytes, round_: int) -> bytes:
    """The salt of ``round_``: HMAC-SHA256 keyed by the salt key, of the round as 8 big-endian bytes."""
    return hmac.new(key, round_.to_bytes(8, "big"), hashlib.sha256).digest()


def salt(index: int, round_: int) -> bytes:
    """The salt test participant ``index`` puts in its update of ``round_`` on the vectors' board."""
    return salt_from_key(salt_key(index), round_)


def tie_seed(round_: int, revealed: Sequence[int]) -> bytes:
    """A round's tie seed as the board derives it (tieSeedOf): the XOR of the salts of the round's
    revealed updates, 32 zero bytes if none was revealed."""
    seed = bytes(SALT_BYTES)
    for i in revealed:
        seed = bytes(a ^ b for a, b in zip(seed, salt(i, round_), strict=True))
    return seed


# ─────────────── the messages the other vectors share ───────────────

UPDATE_DIMENSION = 10
UPDATE_FORMAT = UpdateFormat(dimension=10, update_size=3, max_abs_value=10.0)
ROUND1_ENTRIES = [
    ([1, 4, 7], [0.5, -1.25, 3.0]),
    ([0, 4, 9], [-0.75, 2.0, 0.125]),
    ([2, 3, 4], [1.5, -0.5, -2.0]),
    ([4, 5, 6], [0.25, 0.25, -4.0]),
]
ROUND1_UPDATES: list[UpdateMessage] = [
    UpdateMessage(
        1, PARTICIPANTS[i].address, SparseUpdate(10, np.array(indices), np.array(values)), salt(i, 1)
    )
    for i, (indices, values) in enumerate(ROUND1_ENTRIES)
]
ROUND1_MODEL = ModelMessage(
    1, SERVER.address, np.array([0.1, -0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], dtype=np.float32)
)


def update_fields(message: UpdateMessage) -> dict[str, Any]:
    u = message.update
    return {
        "kind": "update",
        "round": message.round,
        "author": message.author,
        "salt": _hex(message.salt),
        "dimension": u.dimension,
        "indices": [int(i) for i in u.indices],
        "values": f32_values(u.values),
        "values_f32_be": f32_hex(u.values),
    }


def message_vector(name: str, message: UpdateMessage | EvaluationMessage | ModelMessage) -> dict[str, Any]:
    if isinstance(message, UpdateMessage):
        fields = update_fields(message)
    elif isinstance(message, EvaluationMessage):
        fields = {
            "kind": "evaluation",
            "round": message.round,
            "author": message.author,
            "scores": list(message.scores),
        }
    else:
        fields = {
            "kind": "model",
            "round": message.round,
            "author": message.author,
            "params": f32_values(message.params),
            "params_f32_be": f32_hex(message.params),
        }
    data = message.to_bytes()
    return {
        "name": name,
        **fields,
        "bytes": _hex(data),
        "length": len(data),
        "sha256": _hex(message.digest()),
    }


def _header(version: int, kind: int, round_: int, author: str) -> bytes:
    return b"SCCL" + bytes([version, kind]) + round_.to_bytes(8, "big") + bytes.fromhex(author[2:])


def invalid_messages() -> list[dict[str, Any]]:
    """Byte strings a receiver must refuse, with the reference's error class (the first check that
    fails, in the reference's order)."""
    p0 = PARTICIPANTS[0].address
    good = ROUND1_UPDATES[0].to_bytes()
    body = good[34:]
    salt0 = ROUND1_UPDATES[0].salt

    def update(dim: int, indices: Sequence[int], values: Sequence[float]) -> bytes:
        return (
            _header(4, 0, 1, p0)
            + salt0
            + dim.to_bytes(4, "big")
            + len(indices).to_bytes(4, "big")
            + np.asarray(indices, dtype=">u4").tobytes()
            + np.asarray(values, dtype=">f4").tobytes()
        )

    nan = np.frombuffer(bytes.fromhex("7fc00000"), dtype=">f4")[0]
    scores3 = b"".join(s.to_bytes(4, "big") for s in (0, ABSTAIN, 5))
    cases = [
        ("shorter than the 34-byte header", good[:33], "MalformedMessageError"),
        ("bad magic", b"SCCM" + good[4:], "MalformedMessageError"),
        (
            "version 3 (before updates carried a salt)",
            good[:4] + bytes([3]) + good[5:],
            "MalformedMessageError",
        ),
        (
            "kind 3 (a statement kind, never a message)",
            good[:5] + bytes([3]) + good[6:],
            "MalformedMessageError",
        ),
        ("update body shorter than its 32-byte salt", good[: 34 + 31], "MalformedMessageError"),
        (
            "update without a salt (a version-3 body under a version-4 header)",
            _header(4, 0, 1, p0) + body[32:],
            "MalformedMessageError",
        ),
        ("update for a model of 11 parameters", update(11, [1, 4, 7], [0.5, -1.25, 3.0]), "WrongShapeError"),
        ("update sharing 2 coordinates, k = 3 agreed", update(10, [1, 4], [0.5, -1.25]), "WrongShapeError"),
        ("update body one byte short", _header(4, 0, 1, p0) + body[:-1], "MalformedMessageError"),
        ("update with a NaN value", update(10, [1, 4, 7], [0.5, nan, 3.0]), "NonFiniteValueError"),
        (
            "update value 10.000001 beyond the bound 10",
            update(10, [1, 4, 7], [0.5, 10.000001, 3.0]),
            "ValueOutOfBoundsError",
        ),
        ("update indices not ascending", update(10, [4, 1, 7], [0.5, -1.25, 3.0]), "MalformedMessageError"),
        (
            "update index equal to the dimension",
            update(10, [1, 4, 10], [0.5, -1.25, 3.0]),
            "MalformedMessageError",
        ),
        ("update index repeated", update(10, [1, 4, 4], [0.5, -1.25, 3.0]), "MalformedMessageError"),
        ("evaluation of 3 scores, N = 4", _header(4, 1, 1, p0) + scores3, "WrongShapeError"),
        (
            "evaluation body not whole 4-byte scores",
            _header(4, 1, 1, p0) + scores3 + b"\x00" * 5,
            "MalformedMessageError",
        ),
        (
            "evaluation score 1,000,001 (neither <= 10^6 nor ABSTAIN)",
            _header(4, 1, 1, p0) + scores3 + (1_000_001).to_bytes(4, "big"),
            "MalformedMessageError",
        ),
        (
            "model of 9 parameters, d = 10",
            _header(4, 2, 1, SERVER.address) + (9).to_bytes(4, "big") + np.zeros(9, ">f4").tobytes(),
            "WrongShapeError",
        ),
        (
            "model with +Inf",
            _header(4, 2, 1, SERVER.address) + (10).to_bytes(4, "big") + np.full(10, np.inf, ">f4").tobytes(),
            "NonFiniteValueError",
        ),
        (
            "longer than the session's largest message (an update: 34 + 32 + 8 + 8·k = 98 bytes)",
            _header(4, 2, 1, SERVER.address) + (16).to_bytes(4, "big") + np.zeros(16, ">f4").tobytes(),
            "OversizedMessageError",
        ),
    ]
    return [{"name": name, "bytes": _hex(data), "error": error} for name, data, error in cases]


def f32_bits(value: float) -> int:
    return int.from_bytes(np.asarray([value], dtype=">f4").tobytes(), "big")


def invalid_entry_vectors() -> dict[str, Any]:
    """Updates in the board's format (what revealUpdate accepts: header, sizes, length) and the
    first entry a proof of invalidity can name (seccl.protocol.messages.invalid_entry), or null."""
    f = UPDATE_FORMAT
    p0 = PARTICIPANTS[0].address

    def entry_bits(values: Sequence[float | int]) -> list[int]:
        # An int is taken as the float32's bits (NaN payloads, signs); a float as its value.
        return [v if isinstance(v, int) else f32_bits(v) for v in values]

    def case(name: str, indices: Sequence[int], values: Sequence[float | int]) -> dict[str, Any]:
        bits = entry_bits(values)
        data = (
            _header(4, 0, 1, p0)
            + salt(0, 1)
            + f.dimension.to_bytes(4, "big")
            + f.update_size.to_bytes(4, "big")
            + b"".join(i.to_bytes(4, "big") for i in indices)
            + b"".join(b.to_bytes(4, "big") for b in bits)
        )
        position = invalid_entry(
            data, dimension=f.dimension, update_size=f.update_size, max_abs_value=f.max_abs_value
        )
        try:
            decode_message(
                data, dimension=f.dimension, update_size=f.update_size, max_abs_value=f.max_abs_value
            )
            refused = None
        except ProtocolError as exc:
            refused = type(exc).__name__
        return {
            "name": name,
            "indices": list(indices),
            "value_bits": [f"0x{b:08x}" for b in bits],
            "bytes": _hex(data),
            "position": position,
            "decoding_error": refused,
        }

    nan, neg_nan = 0x7FC00000, 0xFFC00001
    inf, neg_inf = 0x7F800000, 0xFF800000
    vectors = [
        case("valid: participant 0's update of round 1", [1, 4, 7], [0.5, -1.25, 3.0]),
        case("valid: the bound itself, its negative and -0.0", [0, 5, 9], [10.0, -10.0, 0x80000000]),
        case("index equal to the dimension", [1, 4, 10], [0.5, -1.25, 3.0]),
        case("index 2^32 - 1 at the first entry", [0xFFFFFFFF, 4, 7], [0.5, -1.25, 3.0]),
        case("index repeated (not above the previous one)", [1, 4, 4], [0.5, -1.25, 3.0]),
        case("indices descending", [4, 1, 7], [0.5, -1.25, 3.0]),
        case("NaN value", [1, 4, 7], [0.5, nan, 3.0]),
        case("negative NaN with a payload, at the first entry", [1, 4, 7], [neg_nan, -1.25, 3.0]),
        case("+Inf value", [1, 4, 7], [0.5, -1.25, inf]),
        case("-Inf value", [1, 4, 7], [neg_inf, -1.25, 3.0]),
        case("value 10.000001, the next float32 above the bound", [1, 4, 7], [0.5, 10.000001, 3.0]),
        case("value -10.000001", [1, 4, 7], [0.5, -1.25, -10.000001]),
        case("two broken entries: the first is named", [1, 4, 4], [0.5, nan, 3.0]),
        case("an early value and a later index: the lower position is named", [1, 4, 2], [0.5, 11.0, 3.0]),
    ]
    return {
        "format": {
            "dimension": f.dimension,
            "update_size": f.update_size,
            "max_abs_value": f.max_abs_value,
            "value_bound_bits": f"0x{f.value_bound_bits:08x}",
        },
        "vectors": vectors,
    }


BOUNDS = {"dimension": 10, "participants": 4, "update_size": 3, "max_abs_value": 10.0, "max_bytes": 98}


def messages_document() -> dict[str, Any]:
    p = [a.address for a in PARTICIPANTS]
    vectors = [
        message_vector("update of participant 0, round 1 (d = 10, k = 3)", ROUND1_UPDATES[0]),
        message_vector(
            "update with the bound's edge values, -0.0 and the smallest subnormal",
            UpdateMessage(
                7,
                p[2],
                SparseUpdate(
                    10,
                    np.array([0, 5, 8, 9]),
                    np.array([10.0, -10.0, -0.0, f32_from_bits(1)], dtype=np.float32),
                ),
                salt(2, 7),
            ),
        ),
        message_vector(
            "update of a 70,000-parameter model (indices above 65,535, round 2^32)",
            UpdateMessage(
                2**32,
                p[3],
                SparseUpdate(70_000, np.array([65_535, 65_536, 69_999]), np.array([1e-3, -2.5e-4, 0.1])),
                salt(3, 2**32),
            ),
        ),
        message_vector(
            "evaluation of voter 2, round 3, N = 4: its own entry ABSTAIN",
            EvaluationMessage(3, p[2], (0, 1_000_000, ABSTAIN, 123_456)),
        ),
        message_vector(
            "evaluation of voter 0, round 2^64 - 1, N = 5",
            EvaluationMessage(2**64 - 1, p[0], (ABSTAIN, 999_999, 1, ABSTAIN, 500_000)),
        ),
        message_vector("model of round 1 (d = 10)", ROUND1_MODEL),
        message_vector(
            "model with extreme float32 values",
            ModelMessage(
                5,
                SERVER.address,
                np.array(
                    [
                        0.0,
                        -0.0,
                        f32_from_bits(0x7F7FFFFF),
                        -f32_from_bits(0x7F7FFFFF),
                        f32_from_bits(1),
                        f32_from_bits(0x00800000),
                        1.0,
                        -1.0 / 3.0,
                    ],
                    dtype=np.float32,
                ),
            ),
        ),
    ]
    return _document(
        "SecCL's three messages, version 4 (docs/PROTOCOL.md §2): fields -> canonical bytes -> SHA-256 "
        "digest. Every integer and float is big-endian; addresses are the 20 raw bytes (shown "
        "checksummed). An update's 'salt' is the 32 bytes after the header, its author's share of the "
        "round's tie seed (ties.json derives the test participants' salts). 'valid' vectors are "
        "UpdateMessage/EvaluationMessage/ModelMessage(...).to_bytes() and .digest() of "
        "seccl.protocol.messages; decode_message(bytes) gives the fields back. 'invalid' vectors are "
        "byte strings a receiver must refuse under 'bounds' (decode_message(bytes, **bounds)); 'error' "
        "names the reference's exception, i.e. the first check that fails in the reference's order "
        "(the order is informative, the refusal normative). 'invalid_entries' are updates in the "
        "board's format for 'format' (the header, dimension, count and length revealUpdate checks) "
        "with the entry a proof of invalidity names: 'position' = invalid_entry(bytes, dimension, "
        "update_size, max_abs_value), the first entry whose index is >= dimension or <= the previous "
        "entry's, or whose value bits & 0x7fffffff exceed 'value_bound_bits' (NaN, +-Inf and values "
        "beyond the bound), null for none: what proveInvalid(round, author, bytes, position) upholds "
        "and any other position refutes. 'value_bits' are the entries' float32 bits; "
        "'decoding_error' is what decode_message raises under the format's bounds (null exactly when "
        "'position' is null).",
        bounds=BOUNDS,
        vectors=vectors,
        invalid=invalid_messages(),
        invalid_entries=invalid_entry_vectors(),
    )


# ─────────────── signatures ───────────────


def signing_steps(round_: int, kind: int, digest: bytes, signer: LocalAccount) -> dict[str, Any]:
    preimage = encode(
        ["uint256", "address", "address", "bytes32", "uint64", "uint8", "bytes32"],
        [DOMAIN.chain_id, DOMAIN.board, DOMAIN.consensus, DOMAIN.nonce, round_, kind, digest],
    )
    signed_hash = DOMAIN.signed_hash(round_, kind, digest)
    eip191 = keccak(b"\x19Ethereum Signed Message:\n32" + signed_hash)
    signature = DOMAIN.sign(signer, round_, kind, digest)
    return {
        "round": round_,
        "kind": kind,
        "digest": _hex(digest),
        "abi_encoded": _hex(preimage),
        "signed_hash": _hex(signed_hash),
        "eip191_hash": _hex(eip191),
        "signature": _hex(signature),
        "r": _hex(signature[:32]),
        "s": _hex(signature[32:64]),
        "v": signature[64],
        "signer": signer.address,
    }


def malleated(signature: bytes) -> list[dict[str, Any]]:
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    high_s = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    compact = r + (s | ((v - 27) << 255)).to_bytes(32, "big")
    return [
        {
            "name": "v written as 0/1 instead of 27/28",
            "signature": _hex(signature[:64] + bytes([v - 27])),
            "why": "ecrecover returns 0 unless v is 27 or 28",
        },
        {
            "name": "high s: (r, n - s) with v flipped",
            "signature": _hex(high_s),
            "why": "s > n/2 = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0 is refused "
            "(OpenZeppelin ECDSA: InvalidSignatureS), although plain ecrecover would recover the signer",
        },
        {
            "name": "64-byte EIP-2098 compact form",
            "signature": _hex(compact),
            "why": "only 65-byte signatures are read (InvalidSignatureLength)",
        },
    ]


def signatures_document() -> dict[str, Any]:
    evaluation = EvaluationMessage(1, PARTICIPANTS[1].address, (750_000, ABSTAIN, 500_000, 500_000))
    vectors = [
        {
            "name": "participant 0 signs its update of round 1 (kind 0): the commitment postUpdate records",
            **signing_steps(1, int(MessageKind.UPDATE), ROUND1_UPDATES[0].digest(), PARTICIPANTS[0]),
        },
        {
            "name": "participant 1 signs its evaluation of round 1 (kind 1)",
            "message": _hex(evaluation.to_bytes()),
            **signing_steps(1, int(MessageKind.EVALUATION), evaluation.digest(), PARTICIPANTS[1]),
        },
        {
            "name": "the server signs θ_1, the model of round 1 (kind 2)",
            **signing_steps(1, int(MessageKind.MODEL), ROUND1_MODEL.digest(), SERVER),
        },
        {
            "name": "the same update digest signed for round 2: another signed hash",
            **signing_steps(2, int(MessageKind.UPDATE), ROUND1_UPDATES[0].digest(), PARTICIPANTS[0]),
        },
    ]
    return _document(
        "What is signed (docs/PROTOCOL.md §3): for the session 'domain', each vector gives round, kind "
        "and the 32-byte digest -> 'abi_encoded' = abi.encode(uint256 chainid, address board, "
        "address consensus, bytes32 nonce, uint64 round, uint8 kind, bytes32 digest) -> 'signed_hash' "
        "= keccak256 of it (SecclSigning.signedHash) -> 'eip191_hash' = keccak256(\"\\x19Ethereum "
        'Signed Message:\\n32" ‖ signed_hash) -> the 65-byte signature r ‖ s ‖ v of eip191_hash by '
        "the signer's key, deterministic (RFC 6979, low s, v in {27, 28}), as eth-account's "
        "sign_message(encode_defunct(primitive=signed_hash)) makes it (seccl.chain.signing). The keys "
        "are PUBLIC TEST KEYS. 'refused' lists forms of the first vector's signature that recover "
        "the same key by plain secp256k1 arithmetic but that both contracts refuse "
        "(SecclSigning.recoverSigner -> address 0); tests/protocol/test_vectors.py checks the refusal "
        "on the real BulletinBoard bytecode.",
        domain=domain_section(),
        keys=keys_section(),
        vectors=vectors,
        refused=malleated(bytes.fromhex(vectors[0]["signature"][2:])),
    )


# ─────────────── delivery and receipt statements ───────────────


def delivery_vector(name: str, delivery: Delivery) -> dict[str, Any]:
    preimage = encode(
        ["uint8", "address", "address[]", "bytes32[]"],
        [int(delivery.kind), delivery.recipient, list(delivery.authors), list(delivery.digests)],
    )
    return {
        "name": name,
        "statement": "delivery",
        "json": delivery.to_dict(),
        "abi_encoded": _hex(preimage),
        "statement_digest": _hex(delivery.statement()),
        "signed_kind": DELIVERY_KIND,
        "signed_hash": _hex(DOMAIN.signed_hash(delivery.round, DELIVERY_KIND, delivery.statement())),
    }


def receipt_vector(name: str, receipt: Receipt) -> dict[str, Any]:
    tx = bytes.fromhex(receipt.tx_id[2:]) if receipt.tx_id else b"\x00" * 32
    preimage = encode(
        ["uint8", "address", "bytes32", "bytes32"], [int(receipt.kind), receipt.author, receipt.digest, tx]
    )
    return {
        "name": name,
        "statement": "receipt",
        "json": receipt.to_dict(),
        "abi_encoded": _hex(preimage),
        "statement_digest": _hex(receipt.statement()),
        "signed_kind": RECEIPT_KIND,
        "signed_hash": _hex(DOMAIN.signed_hash(receipt.round, RECEIPT_KIND, receipt.statement())),
    }


def commitment_vector(name: str, index: int, message: UpdateMessage) -> dict[str, Any]:
    signed = sign_message(message, PARTICIPANTS[index], DOMAIN)
    commitment = Commitment.of(signed)
    return {
        "name": name,
        "json": commitment.to_dict(),
        "update_sha256": _hex(message.digest()),
        "signed_kind": int(MessageKind.UPDATE),
        "signed_hash": _hex(DOMAIN.signed_hash(message.round, int(MessageKind.UPDATE), message.digest())),
        "signer": PARTICIPANTS[index].address,
    }


def statements_document() -> dict[str, Any]:
    p = [a.address for a in PARTICIPANTS]
    digests = [u.digest() for u in ROUND1_UPDATES]
    tx = keccak(text="an example transaction id")
    evaluation = EvaluationMessage(1, p[1], (750_000, ABSTAIN, 500_000, 500_000))
    vectors = [
        delivery_vector(
            "round 2 opens: θ_1 handed to participant 0, signed with round 1 (the model's round)",
            Delivery.sign(
                SERVER, DOMAIN, 1, MessageKind.MODEL, p[0], [SERVER.address], [ROUND1_MODEL.digest()]
            ),
        ),
        delivery_vector(
            "the final model θ_1 of a one-round session handed to participant 3 (signed with round 1)",
            Delivery.sign(
                SERVER, DOMAIN, 1, MessageKind.MODEL, p[3], [SERVER.address], [ROUND1_MODEL.digest()]
            ),
        ),
        receipt_vector(
            "round 1: the server took participant 0's commitment and cites the postUpdate recording it",
            Receipt.sign(SERVER, DOMAIN, 1, MessageKind.UPDATE, p[0], digests[0], _hex(tx)),
        ),
        receipt_vector(
            "round 1: the server took voter 1's ballot (its evaluation message's digest)",
            Receipt.sign(SERVER, DOMAIN, 1, MessageKind.EVALUATION, p[1], evaluation.digest(), _hex(tx)),
        ),
        receipt_vector(
            "round 1: a receipt citing no transaction (tx_id '' is signed as 32 zero bytes)",
            Receipt.sign(SERVER, DOMAIN, 1, MessageKind.UPDATE, p[2], digests[2], ""),
        ),
    ]
    commitments = [
        commitment_vector(f"participant {i} answers the train request of round 1", i, u)
        for i, u in enumerate(ROUND1_UPDATES)
    ]
    return _document(
        "The server's statements (docs/PROTOCOL.md §3), in the session of signatures.json: a delivery "
        "(kind 3) signs keccak256(abi.encode(uint8 kind', address recipient, address[] authors, "
        "bytes32[] digests)); a receipt (kind 4) signs keccak256(abi.encode(uint8 kind', address "
        "author, bytes32 digest, bytes32 txId)). The server delivers models only (kind' 2, authors = "
        "[server]): updates are revealed on the board, never delivered. 'json' is the statement as "
        "evidence.json carries it (seccl.protocol.statements Delivery/Receipt.to_dict(), the "
        "signature included); 'abi_encoded' the preimage, 'statement_digest' its keccak256, "
        "'signed_hash' the hash the server's key signs (EIP-191) with the statement's round and kind "
        "3 or 4. An update receipt's digest is the commitment's: the SHA-256 of the round-1 update "
        "listed in 'updates'. 'commitments' are the participants' replies to a train request "
        "(seccl.protocol.envelope.Commitment.to_dict(): digest and signature in hex without 0x), the "
        "signature the author's over the update's digest with kind 0, the one postUpdate checks.",
        domain=domain_section(),
        updates=[
            message_vector(f"update of participant {i}, round 1", u) for i, u in enumerate(ROUND1_UPDATES)
        ],
        model=message_vector("θ_1, the model of round 1", ROUND1_MODEL),
        vectors=vectors,
        commitments=commitments,
    )


# ─────────────── tie seeds ───────────────


def tie_keys(seed: bytes, n: int, round_: int) -> list[str]:
    return ["0x" + tie_key(seed, round_, i).to_bytes(32, "big").hex() for i in range(n)]


def tie_seed_vector(name: str, round_: int, n: int, revealed: Sequence[int]) -> dict[str, Any]:
    seed = tie_seed(round_, revealed)
    keys = [tie_key(seed, round_, i) for i in range(n)]
    return {
        "name": name,
        "round": round_,
        "n": n,
        "revealed": list(revealed),
        "salts": [_hex(salt(i, round_)) for i in revealed],
        "tie_seed": _hex(seed),
        "tie_keys": tie_keys(seed, n, round_),
        "tie_order": sorted(range(n), key=lambda i: keys[i]),
    }


def ties_document() -> dict[str, Any]:
    salts = [
        {
            "participant": i,
            "address": PARTICIPANTS[i].address,
            "salt_key": _hex(salt_key(i)),
            "rounds": {str(r): _hex(salt(i, r)) for r in (1, 2, 3, 4, 7, 2**32)},
        }
        for i in range(len(PARTICIPANTS))
    ]
    simulation = [
        {
            "seed": seed,
            "participant": i,
            "salt_key": _hex(simulation_salt_key(seed, i)),
            "round": 1,
            "salt": _hex(salt_from_key(simulation_salt_key(seed, i), 1)),
        }
        for seed, i in ((0, 0), (0, 1), (7, 0))
    ]
    vectors = [
        tie_seed_vector(
            "round 1, all four revealed (the election of elections.json's first profile)", 1, 4, [0, 1, 2, 3]
        ),
        tie_seed_vector(
            "round 1, participant 3 withholds its reveal: another seed, and 3 is not eligible",
            1,
            4,
            [0, 1, 2],
        ),
        tie_seed_vector("round 2, one reveal: the seed is its salt", 2, 4, [2]),
        tie_seed_vector("round 3, no reveal: the seed is 32 zero bytes", 3, 4, []),
    ]
    return _document(
        "Each round's tie seed (docs/PROTOCOL.md §4, §5), for the participants and board of "
        "signatures.json. A participant's 'salt_key' = HMAC-SHA256(key = its private key, message = "
        '"seccl-salt/" ‖ the board\'s 20 address bytes); its salt of round r = HMAC-SHA256(key = '
        "salt_key, message = r as 8 big-endian bytes) (seccl.roles.participant_state); the salt is "
        "the 32 bytes after an update message's header. 'simulation' lists the salt keys a simulation "
        '(`seccl run --seed S`) gives participant i instead, SHA-256("seccl-salts/S/i"), so runs '
        "repeat. A round's 'tie_seed' is the XOR of the salts of its revealed updates, 32 zero bytes "
        "if none (the board's tieSeedOf(round); an update proven invalid after its reveal still "
        "counts); 'tie_keys' = uint256(keccak256(abi.encode(bytes32 tie_seed, uint64 round, uint256 "
        "index))) by index and 'tie_order' the indices by ascending tie key, the order equal scores "
        "and equal means are broken in.",
        board=BOARD,
        salts=salts,
        simulation=simulation,
        vectors=vectors,
    )


# ─────────────── ballots ───────────────


def ballot_vector(
    name: str,
    round_: int,
    voter: int,
    m: int,
    f1: Sequence[float | None],
    revealed: Sequence[int],
    invalid: Sequence[int] = (),
) -> dict[str, Any]:
    """``f1[j]``: the macro-F1 the voter measured for j's update (None: not read -> ABSTAIN; the
    voter's own entry is None); ``revealed``: whose updates the board revealed (their salts make
    the round's tie seed); ``invalid``: revealed updates that break the rules (score 0), proven
    invalid on the board, hence not eligible."""
    n = len(f1)
    author = PARTICIPANTS[voter].address
    eligible = [j for j in revealed if j not in invalid]
    seed = tie_seed(round_, revealed)
    scores = tuple(0 if j in invalid else ABSTAIN if f is None else score_to_ppm(f) for j, f in enumerate(f1))
    message = EvaluationMessage(round_, author, scores)
    ranking = voter_ranking(scores, voter, m, tie_seed=seed, round_=round_, eligible=eligible)
    signature = DOMAIN.sign(PARTICIPANTS[voter], round_, int(MessageKind.EVALUATION), message.digest())
    calldata = _selector("submitScores(uint64,address,bytes,bytes,bytes)") + encode(
        ["uint64", "address", "bytes", "bytes", "bytes"],
        [round_, author, message.to_bytes()[34:], bytes(ranking), signature],
    )
    return {
        "name": name,
        "round": round_,
        "n": n,
        "m": m,
        "voter": voter,
        "voter_address": author,
        "revealed": list(revealed),
        "invalid": list(invalid),
        "eligible": eligible,
        "tie_seed": _hex(seed),
        "f1": list(f1),
        "scores": list(scores),
        "body": _hex(message.to_bytes()[34:]),
        "message": _hex(message.to_bytes()),
        "digest": _hex(message.digest()),
        "tie_keys": tie_keys(seed, n, round_),
        "ranking": list(ranking),
        "ranking_bytes": _hex(bytes(ranking)),
        "signature": _hex(signature),
        "submitScores_calldata": _hex(calldata),
    }


def ballots_document() -> dict[str, Any]:
    ppm_cases = [0.0, 1.0, 0.0000025, 0.0000035, 0.1234565, 1 / 3, 2 / 3, 0.8333335, 0.9999995]
    vectors = [
        ballot_vector(
            "voter 1 of 4, M = 2, everyone eligible: two equal scores, the tie key decides",
            1,
            1,
            2,
            [0.75, None, 0.5, 0.5],
            [0, 1, 2, 3],
        ),
        ballot_vector(
            "voter 0 of 5, M = 2: 3 never revealed its update (not eligible: its entry is ignored even "
            "when scored), the voter could not read 4's reveal (ABSTAIN)",
            4,
            0,
            2,
            [None, 0.6, 0.6, 0.99, None],
            [0, 1, 2, 4],
        ),
        ballot_vector(
            "voter 2 of 5, M = 3: 4's revealed update breaks the rules: scored 0 and proven invalid, so "
            "not eligible and not ranked (its salt still counts in the tie seed)",
            2,
            2,
            3,
            [0.875, 0.25, None, None, 0.0],
            [0, 1, 2, 4],
            invalid=[4],
        ),
        ballot_vector(
            "voter 3 of 4, M = 2: a single participant to rank (the ranking is shorter than M)",
            1,
            3,
            2,
            [None, 0.5, None, None],
            [0, 1, 2, 3],
        ),
        ballot_vector(
            "voter 0 of 4, M = 1, round 2: all equal, the lowest tie key wins",
            2,
            0,
            1,
            [None, 0.5, 0.5, 0.5],
            [0, 1, 2, 3],
        ),
    ]
    return _document(
        "Ballots (docs/PROTOCOL.md §4 step 5, §5): a voter's measured macro-F1 per participant -> its "
        "scores in parts per million (score_to_ppm: round(f1·10^6) in IEEE double, ties to even; "
        "ABSTAIN = 2^32-1 for itself and for any update it could not read; 0 for a revealed update "
        "that breaks the rules) -> the evaluation body (one big-endian u32 per participant) and "
        "message -> its SHA-256 digest. 'revealed' are the participants whose updates the board "
        "revealed, 'invalid' those of them proven invalid, 'eligible' = revealed and not invalid; "
        "'tie_seed' the round's, the XOR of the revealed updates' salts (ties.json); 'tie_keys' = "
        "uint256(keccak256(abi.encode(bytes32 tie_seed, uint64 round, uint256 index))) by index; "
        "'ranking' = the voter's top-M of the eligible participants it scored, higher score first, "
        "equal scores by lower tie key (seccl.election.voter_ranking), one byte per index in "
        "'ranking_bytes'; 'signature' the voter's signature of the digest (kind 1) and "
        "'submitScores_calldata' the call that carries the ballot, both in the session of "
        "signatures.json. 'ppm' lists the rounding of score_to_ppm on its own.",
        domain=domain_section(),
        ppm=[{"f1": f, "f1_times_1e6": f * 1e6, "ppm": score_to_ppm(f)} for f in ppm_cases],
        vectors=vectors,
    )


# ─────────────── elections ───────────────


def election_vector(
    name: str,
    round_: int,
    n: int,
    m: int,
    revealed: Sequence[int],
    ballots: dict[int, Sequence[int]],
    invalid: Sequence[int] = (),
) -> dict[str, Any]:
    eligible = [i for i in revealed if i not in invalid]
    seed = tie_seed(round_, revealed)
    outcome = borda_tally(ballots, n, m, tie_seed=seed, round_=round_, eligible=eligible)
    others = [len(ballots) - (i in ballots) for i in range(n)]
    abstentions = [others[i] - outcome.assessors[i] if i in eligible else 0 for i in range(n)]
    electable = [i for i in sorted(eligible) if ballots and 2 * outcome.assessors[i] > others[i]]
    record = bytes([len(outcome.candidates), *outcome.candidates])
    return {
        "name": name,
        "round": round_,
        "n": n,
        "m": m,
        "counter_bits": 8 if m * (n - 1) < 256 else 16,
        "revealed": list(revealed),
        "invalid": list(invalid),
        "eligible": eligible,
        "tie_seed": _hex(seed),
        "ballots": [{"voter": v, "scores": list(s)} for v, s in sorted(ballots.items())],
        "tie_keys": tie_keys(seed, n, round_),
        "rankings": [
            {
                "voter": v,
                "ranking": list(voter_ranking(s, v, m, tie_seed=seed, round_=round_, eligible=eligible)),
            }
            for v, s in sorted(ballots.items())
        ],
        "points": list(outcome.totals),
        "assessors": list(outcome.assessors),
        "other_ballots": others,
        "abstentions": abstentions,
        "electable": electable,
        "candidates": list(outcome.candidates),
        "elected_record": _hex(record),
    }


def elections_document() -> dict[str, Any]:
    A = ABSTAIN
    vectors = [
        election_vector(
            "4 voters, M = 2: 0 and 1 tie at 4 points (equal means), the tie keys elect 1 first "
            "(voter 1's ballot is ballots.json's first, its equal scores also broken by tie key)",
            1,
            4,
            2,
            [0, 1, 2, 3],
            {
                0: [A, 900_000, 800_000, 100_000],
                1: [750_000, A, 500_000, 500_000],
                2: [650_000, 950_000, A, 300_000],
                3: [500_000, 400_000, 990_000, A],
            },
        ),
        election_vector(
            "equal scores in every ballot: rankings and equal means follow the tie keys",
            1,
            4,
            2,
            [0, 1, 2, 3],
            {v: [A if j == v else 500_000 for j in range(4)] for v in range(4)},
        ),
        election_vector(
            "abstentions are neutral: 3 is assessed by 2 of 3 other voters and still wins on its mean",
            1,
            4,
            1,
            [0, 1, 2, 3],
            {
                0: [A, 400_000, 300_000, A],
                1: [300_000, A, 200_000, 900_000],
                2: [500_000, 600_000, A, 950_000],
                3: [100_000, 200_000, 300_000, A],
            },
        ),
        election_vector(
            "participant 2 revealed no update: its scores are ignored, neither assessments nor "
            "abstentions, and it cannot be elected",
            3,
            5,
            2,
            [0, 1, 3, 4],
            {
                0: [A, 500_000, 1_000_000, 400_000, 300_000],
                1: [600_000, A, 1_000_000, 200_000, 100_000],
                2: [700_000, 800_000, A, 900_000, 100_000],
                3: [100_000, 200_000, 1_000_000, A, 900_000],
                4: [300_000, 100_000, 1_000_000, 200_000, A],
            },
        ),
        election_vector(
            "participant 1 revealed an update proven invalid: voters scored it 0, it is not eligible "
            "(its entries are ignored), and its salt still counts in the tie seed",
            2,
            4,
            1,
            [0, 1, 2, 3],
            {
                0: [A, 0, 500_000, 500_000],
                2: [400_000, 0, A, 400_000],
                3: [700_000, 0, 700_000, A],
            },
            invalid=[1],
        ),
        election_vector(
            "quorum: 4 is assessed by exactly half of the other ballots (2 of 4), unelectable "
            "despite the best mean",
            2,
            5,
            2,
            [0, 1, 2, 3, 4],
            {
                0: [A, 300_000, 200_000, 100_000, 900_000],
                1: [300_000, A, 200_000, 100_000, 900_000],
                2: [300_000, 200_000, A, 100_000, A],
                3: [300_000, 200_000, 100_000, A, A],
                4: [100_000, 200_000, 300_000, 400_000, A],
            },
        ),
        election_vector(
            "two of five voted: a non-voter needs both ballots, a voter the one other ballot",
            1,
            5,
            2,
            [0, 1, 2, 3, 4],
            {
                1: [800_000, A, 700_000, A, 100_000],
                3: [900_000, 600_000, 200_000, A, A],
            },
        ),
        election_vector(
            "fewer electable than M: the list is shorter",
            1,
            4,
            3,
            [0, 1, 2, 3],
            {
                0: [A, 500_000, A, A],
                1: [600_000, A, A, A],
                2: [700_000, 100_000, A, A],
            },
        ),
        election_vector("no ballot at all: nobody is elected", 1, 4, 2, [0, 1, 2, 3], {}),
        election_vector(
            "M = 1 of N = 4 (l = 0.2, `seccl run -n 4`)",
            1,
            4,
            1,
            [0, 1, 2, 3],
            {
                0: [A, 108_333, 37_267, 45_455],
                1: [102_632, A, 10_000, 56_364],
                2: [26_144, 57_890, A, 145_342],
                3: [53_333, 51_111, 19_048, A],
            },
        ),
    ]
    return _document(
        "Elections (docs/PROTOCOL.md §5), computed by seccl.election.borda_tally, the reference the "
        "consensus contract equals: for each profile (n participants, m = M candidates, the round, the "
        "participants whose updates the board 'revealed', those of them proven 'invalid', hence the "
        "'eligible' = revealed and not invalid, the round's 'tie_seed' = the XOR of the revealed "
        "updates' salts (ties.json), and the counted ballots, voter -> scores by index, ABSTAIN = "
        "4294967295) -> each voter's ranking, Borda 'points' by index "
        "(totalsOf), 'abstentions' as the contract counts them (abstentions of other voters on an "
        "eligible participant; 0 for the others), 'assessors' = other_ballots - abstentions on "
        "eligible participants (0 for the others), 'electable' (assessed by more than half of the "
        "other ballots), 'candidates' best first (electedOf, CandidatesElected) and 'elected_record', "
        "the bytes the contract stores (a count byte, then one byte per candidate, best first).",
        vectors=vectors,
    )


# ─────────────── aggregation ───────────────


def aggregation_vector(
    name: str,
    params: Sequence[float],
    updates: Sequence[SparseUpdate],
    rule: str = "shared-mean",
    note: str | None = None,
) -> dict[str, Any]:
    theta = np.asarray(params, dtype=np.float32)
    keys = [(u.indices.astype("<u4").tobytes(), u.values.astype("<f4").tobytes()) for u in updates]
    order = sorted(range(len(updates)), key=lambda i: keys[i])
    result = aggregate(theta, list(updates), rule=rule)
    vector: dict[str, Any] = {
        "name": name,
        "rule": rule,
        "params": f32_values(theta),
        "params_f32_be": f32_hex(theta),
        "updates": [
            {
                "dimension": u.dimension,
                "indices": [int(i) for i in u.indices],
                "values": f32_values(u.values),
                "values_f32_be": f32_hex(u.values),
                "sort_key": _hex(keys[i][0] + keys[i][1]),
            }
            for i, u in enumerate(updates)
        ],
        "canonical_order": order,
        "result": f32_values(result),
        "result_f32_be": f32_hex(result),
        "result_sha256": _hex(hashlib.sha256(np.asarray(result, dtype=">f4").tobytes()).digest()),
    }
    if note:
        vector["note"] = note
    return vector


def aggregation_document() -> dict[str, Any]:
    def u(d: int, indices: Sequence[int], values: Sequence[float]) -> SparseUpdate:
        return SparseUpdate(d, np.asarray(indices), np.asarray(values, dtype=np.float32))

    theta8 = [0.5, -0.25, 1.0, 0.0, 2.0, -1.5, 0.125, 3.0]
    overlapping = [
        u(8, [0, 2, 5], [0.1, -0.2, 0.3]),
        u(8, [2, 5, 7], [0.4, 0.5, -0.6]),
        u(8, [1, 2, 6], [1.0, 2.0, -3.0]),
    ]
    tiny = f32_from_bits(0x21800000)  # 2^-60
    vectors = [
        aggregation_vector(
            "shared-mean: each coordinate moves by the mean of the updates sharing it", theta8, overlapping
        ),
        aggregation_vector(
            "mean: the sum divided by the number of updates", theta8, overlapping, rule="mean"
        ),
        aggregation_vector("sum", theta8, overlapping, rule="sum"),
        aggregation_vector(
            "the canonical order changes the bits: 8, 2^-60, -8 on one coordinate",
            [0.0, 0.0, 0.0, 0.0],
            [u(4, [1], [8.0]), u(4, [1], [tiny]), u(4, [1], [-8.0])],
            note="Sorted by the little-endian bytes the order is 8.0 (00000041), -8.0 (000000c1), 2^-60 "
            "(00008021): the float64 total is 2^-60, the step 2^-60/3. Accumulated in the order given "
            "(8 + 2^-60 rounds to 8) the total would be 0 and the coordinate would not move.",
        ),
        aggregation_vector(
            "the sort key is not numeric order: index 256 (00010000) sorts before index 1 (01000000)",
            [0.0] * 257,
            [u(257, [1], [1.0]), u(257, [256], [2.0])],
        ),
        aggregation_vector(
            "θ + step rounds to float32 to nearest, ties to even: 1 + 2^-24 -> 1, 1 + 3·2^-24 -> 1 + 2^-22",
            [1.0, 1.0, 1.0],
            [u(3, [0, 1], [f32_from_bits(0x33800000), f32_from_bits(0x34400000)])],
        ),
        aggregation_vector("no update: θ_r = θ_{r-1}", theta8, []),
    ]
    return _document(
        "Aggregation (docs/PROTOCOL.md §6), computed by seccl.learning.aggregation.aggregate: θ_{r-1} "
        "('params', float32) and the elected candidates' valid sparse updates -> θ_r. 'sort_key' is "
        "each update's canonical key: its indices as little-endian u32 bytes followed by its values as "
        "little-endian f32 bytes, compared as unsigned byte strings (indices first, then values); "
        "'canonical_order' lists the updates' positions in that order, the order of the float64 "
        "accumulation. 'result_f32_be' is θ_r as big-endian float32 bytes (the model message's "
        "body after its size), 'result_sha256' the SHA-256 of those bytes.",
        vectors=vectors,
    )


# ─────────────── sparse selection ───────────────


def sparse_document() -> dict[str, Any]:
    sizes = [
        (0.1, 46970),
        (0.1, 470),
        (0.07, 100),
        (0.3, 10),
        (0.25, 10),
        (0.5, 3),
        (0.001, 10),
        (1e-12, 5),
        (1.0, 7),
        (0.1, 4294967295),
        (0.3, 4294967295),
    ]
    size_vectors = [
        {
            "fraction": s,
            "dimension": d,
            "product": s * d,
            "ceil_of_product": math.ceil(s * d),
            "k": update_size(s, d),
        }
        for s, d in sizes
    ]
    cases: list[tuple[str, list[float], list[float], float]] = [
        (
            "ties in |Δ| go to the lower index",
            [0.5, -0.5, 0.25, 0.5, -1.0, 0.0, 0.125, -0.25],
            [0.0] * 8,
            0.25,
        ),
        ("k = 4 of 8", [0.5, -0.5, 0.25, 0.5, -1.0, 0.0, 0.125, -0.25], [0.0] * 8, 0.5),
        ("0.0 and -0.0 have the same magnitude", [0.0, -0.0, 0.0, 1.0], [0.0] * 4, 0.5),
        (
            "Δ = θ_local - θ_global in float32",
            [1.0000001, 0.3, -2.0, 5.5, 0.1],
            [1.0, 0.2, -2.5, 5.5, 0.0],
            0.4,
        ),
        ("s = 1 keeps every coordinate", [0.0, -3.0, 2.0], [0.0, 0.0, 0.0], 1.0),
    ]
    selection = []
    for name, local, global_, fraction in cases:
        d = delta(np.asarray(local, dtype=np.float32), np.asarray(global_, dtype=np.float32))
        picked = select_top_fraction(d, fraction)
        selection.append(
            {
                "name": name,
                "local": f32_values(local),
                "global": f32_values(global_),
                "delta": f32_values(d),
                "delta_f32_be": f32_hex(d),
                "fraction": fraction,
                "k": len(picked),
                "indices": [int(i) for i in picked.indices],
                "values": f32_values(picked.values),
            }
        )
    return _document(
        "Sparse updates (docs/PROTOCOL.md §1 and §4 step 2), computed by seccl.learning.sparse. "
        "'sizes': k = update_size(fraction, dimension): x = fraction·dimension in IEEE double; if "
        "|x - round(x)| <= max(1e-9·max(|x|, |round(x)|), 1e-9) then k = round(x) (ties to even), else "
        "k = ceil(x); then k is clamped to [1, dimension]. Both tolerances apply: absolute below 1, "
        "relative above, so for very large products a fractional .5 can round down (the last entry). "
        "'selection': Δ = float32(θ_local) - float32(θ_global) in float32, then the k coordinates of "
        "largest |Δ| (select_top_fraction), ties to the lower index, listed by ascending index.",
        sizes=size_vectors,
        selection=selection,
    )


# ─────────────── θ_0 from the seed ───────────────

LENET = [
    ("conv1.weight", (6, 1, 5, 5)),
    ("conv1.bias", (6,)),
    ("conv2.weight", (16, 6, 5, 5)),
    ("conv2.bias", (16,)),
    ("fc1.weight", (108, 400)),
    ("fc1.bias", (108,)),
    ("fc2.weight", (10, 108)),
    ("fc2.bias", (10,)),
]


def mt19937_outputs(seed: int, count: int) -> np.ndarray:
    """The first ``count`` 32-bit outputs of MT19937 seeded by init_genrand(seed mod 2^32)."""
    bits = np.random.MT19937()
    bits._legacy_seeding(seed % 2**32)
    return bits.random_raw(count).astype(np.uint32)


def glorot_bound(shape: tuple[int, ...]) -> float:
    """xavier_uniform_'s bound a = sqrt(3)·sqrt(2 / (fan_in + fan_out)), in double as PyTorch has it."""
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    return math.sqrt(3.0) * (1.0 * math.sqrt(2.0 / float(fan_in + fan_out)))


def theta0_without_torch(seed: int, *, fused: bool = True) -> np.ndarray:
    """θ_0 as docs/PROTOCOL.md specifies it, with numpy's MT19937 instead of PyTorch.

    ``fused``: w = fl32(x·(hi - lo) + lo) with one rounding (what PyTorch's AVX2/AVX-512 CPU kernels
    compute, the reference); False rounds the product first (PyTorch's baseline kernel, which
    gives another θ_0).
    """
    draws = sum(math.prod(shape) for name, shape in LENET if name.endswith("weight"))
    outputs = mt19937_outputs(seed, draws)
    parts, used = [], 0
    for name, shape in LENET:
        count = math.prod(shape)
        if name.endswith("bias"):
            parts.append(np.zeros(count, dtype=np.float32))
            continue
        a = glorot_bound(shape)
        lo, hi = np.float32(-a), np.float32(a)
        x = (outputs[used : used + count] & np.uint32(0xFFFFFF)).astype(np.float32) * np.float32(2.0**-24)
        width = np.float32(hi - lo)
        if fused:  # exact in double (a 24-bit by 24-bit product plus lo), then one rounding to float32
            w = (x.astype(np.float64) * np.float64(width) + np.float64(lo)).astype(np.float32)
        else:
            w = (x * width + lo).astype(np.float32)
        parts.append(np.where(w == hi, lo, w).astype(np.float32))
        used += count
    return np.concatenate(parts)


def theta0_document() -> dict[str, Any]:
    layers, offset = [], 0
    for name, shape in LENET:
        count = math.prod(shape)
        entry: dict[str, Any] = {"name": name, "shape": list(shape), "offset": offset, "count": count}
        if name.endswith("weight"):
            receptive = math.prod(shape[2:])
            a = glorot_bound(shape)
            entry.update(
                fan_in=shape[1] * receptive,
                fan_out=shape[0] * receptive,
                bound=a,
                bound_f32_be=f32_hex([a]),
                init="uniform(-a, a) from the generator",
            )
        else:
            entry["init"] = "zeros (no draw)"
        layers.append(entry)
        offset += count
    seeds = []
    for seed in (0, 1, 2):
        theta = get_flat_params(build_model(seed))
        unfused = theta0_without_torch(seed, fused=False)
        be = np.asarray(theta, dtype=">f4").tobytes()
        seeds.append(
            {
                "seed": seed,
                "dimension": len(theta),
                "sha256_f32_be": _hex(hashlib.sha256(be).digest()),
                "first_params": f32_values(theta[:8]),
                "first_params_f32_be": f32_hex(theta[:8]),
                "first_of_each_tensor": {layer["name"]: float(theta[layer["offset"]]) for layer in layers},
                "last_weight_params": f32_values(theta[46_960 - 4 : 46_960]),
                "initial_model_digest_for_test_server": _hex(ModelMessage(0, SERVER.address, theta).digest()),
                "sha256_f32_be_if_rounded_twice": _hex(
                    hashlib.sha256(unfused.astype(">f4").tobytes()).digest()
                ),
                "params_that_differ_if_rounded_twice": int((unfused != theta).sum()),
            }
        )
    return _document(
        "θ_0 from the seed (docs/PROTOCOL.md §1, 'θ_0'): seccl.learning.model.build_model(seed), "
        "flattened by get_flat_params (the tensors of 'layers' in order, each row-major), computed by "
        "PyTorch 2.13.0+cpu (constraints.txt) on x86-64 with its AVX2/AVX-512 kernels. "
        "'sha256_f32_be' is the SHA-256 of the 46,970 parameters as big-endian float32 (4·46,970 "
        "bytes); 'initial_model_digest_for_test_server' the digest the board records as initialModel "
        "when the server is the test server of signatures.json (the model message of round 0, author "
        "the server); 'mt19937_seed_0' the generator's first outputs for seed 0. "
        "'sha256_f32_be_if_rounded_twice' is what you get by rounding x·(hi-lo) to float32 before "
        "adding lo (PyTorch's baseline CPU kernel, e.g. ATEN_CPU_CAPABILITY=default): NOT θ_0, listed "
        "to diagnose that mistake.",
        generator={
            "algorithm": "MT19937, init_genrand(seed mod 2^32); one 32-bit output u per weight element",
            "draws": int(sum(math.prod(s) for n, s in LENET if n.endswith("weight"))),
            "value": "lo = float32(-a), hi = float32(a), x = (u mod 2^24)·2^-24, "
            "w = float32(x·(hi - lo) + lo) rounded once (fused multiply-add), hi - lo in float32; "
            "w = lo if w == hi",
        },
        mt19937_seed_0=[int(x) for x in mt19937_outputs(0, 5)],
        layers=layers,
        seeds=seeds,
    )


# ─────────────── the contracts' interface ───────────────


def _canonical_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_canonical_type(c) for c in param["components"]) + ")" + kind[len("tuple") :]
    return kind


def _signature(item: dict[str, Any]) -> str:
    return f"{item['name']}(" + ",".join(_canonical_type(p) for p in item.get("inputs", [])) + ")"


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _params(params: list[dict[str, Any]], *, indexed: bool = False) -> list[dict[str, Any]]:
    out = []
    for p in params:
        entry: dict[str, Any] = {"name": p.get("name", ""), "type": _canonical_type(p)}
        if indexed:
            entry["indexed"] = bool(p.get("indexed"))
        out.append(entry)
    return out


def abi_document() -> dict[str, Any]:
    contracts: dict[str, Any] = {}
    for name in CONTRACT_NAMES:
        abi = load_artifact(name).abi
        by_kind = {
            k: sorted((i for i in abi if i["type"] == k), key=_signature)
            for k in ("function", "event", "error")
        }
        constructor = next(i for i in abi if i["type"] == "constructor")
        contracts[name] = {
            "constructor": {
                "signature": _signature({"name": "constructor", **constructor}),
                "inputs": _params(constructor["inputs"]),
            },
            "functions": [
                {
                    "signature": _signature(f),
                    "selector": _hex(_selector(_signature(f))),
                    "state_mutability": f["stateMutability"],
                    "inputs": _params(f["inputs"]),
                    "outputs": _params(f["outputs"]),
                }
                for f in by_kind["function"]
            ],
            "events": [
                {
                    "signature": _signature(e),
                    "topic0": _hex(keccak(text=_signature(e))),
                    "inputs": _params(e["inputs"], indexed=True),
                }
                for e in by_kind["event"]
            ],
            "errors": [
                {
                    "signature": _signature(e),
                    "selector": _hex(_selector(_signature(e))),
                    "inputs": _params(e["inputs"]),
                }
                for e in by_kind["error"]
            ],
        }
    update = ROUND1_UPDATES[0]
    ballot = ballots_document()["vectors"][0]
    election = elections_document()["vectors"][0]
    signature = DOMAIN.sign(PARTICIPANTS[0], 1, int(MessageKind.UPDATE), update.digest())
    nan_update = next(v for v in invalid_entry_vectors()["vectors"] if v["name"] == "NaN value")
    f = UPDATE_FORMAT

    def topic(value: int | str) -> str:
        raw = int(value, 16) if isinstance(value, str) else value
        return _hex(raw.to_bytes(32, "big"))

    examples = [
        {
            "function": "postUpdate",
            "name": "postUpdate of participant 0's round-1 update (signatures.json's first vector)",
            "calldata": _hex(
                _selector("postUpdate(uint64,address,bytes32,bytes)")
                + encode(
                    ["uint64", "address", "bytes32", "bytes"], [1, update.author, update.digest(), signature]
                )
            ),
        },
        {
            "event": "MessagePosted",
            "name": "MessagePosted log of that update (the kind is a uint8 topic: 0 update, 1 evaluation, "
            "2 model)",
            "topics": [
                _hex(keccak(text="MessagePosted(uint64,uint8,address,bytes32)")),
                topic(1),
                topic(int(MessageKind.UPDATE)),
                topic(update.author),
            ],
            "data": _hex(update.digest()),
        },
        {
            "function": "revealUpdate",
            "name": "revealUpdate of that update, once the commitments have closed: its bytes travel in "
            "this calldata, where every reader takes them from",
            "calldata": _hex(
                _selector("revealUpdate(uint64,address,bytes)")
                + encode(["uint64", "address", "bytes"], [1, update.author, update.to_bytes()])
            ),
        },
        {
            "event": "UpdateRevealed",
            "name": "UpdateRevealed log of that reveal (its transaction's calldata holds the bytes)",
            "topics": [
                _hex(keccak(text="UpdateRevealed(uint64,address,bytes32)")),
                topic(1),
                topic(update.author),
            ],
            "data": _hex(update.digest()),
        },
        {
            "function": "tieSeedOf",
            "name": "tieSeedOf(1) once all four round-1 updates are revealed: ties.json's first seed",
            "calldata": _hex(_selector("tieSeedOf(uint64)") + encode(["uint64"], [1])),
            "returns": _hex(tie_seed(1, [0, 1, 2, 3])),
        },
        {
            "function": "updateFormat",
            "name": "updateFormat() of a board deployed with the format of messages.json's "
            "invalid_entries (d = 10, k = 3, bound 10.0)",
            "calldata": _hex(_selector("updateFormat()")),
            "returns": _hex(
                encode(["uint32", "uint32", "uint32"], [f.dimension, f.update_size, f.value_bound_bits])
            ),
        },
        {
            "function": "proveInvalid",
            "name": "proveInvalid of messages.json's invalid_entries 'NaN value' (had participant 0 "
            "committed and revealed it in round 1): entry 1",
            "calldata": _hex(
                _selector("proveInvalid(uint64,address,bytes,uint256)")
                + encode(
                    ["uint64", "address", "bytes", "uint256"],
                    [1, update.author, bytes.fromhex(nan_update["bytes"][2:]), nan_update["position"]],
                )
            ),
        },
        {
            "event": "ScoresSubmitted",
            "name": "ScoresSubmitted log of ballots.json's first ballot",
            "topics": [
                _hex(keccak(text="ScoresSubmitted(uint64,address,bytes32,bytes,bytes)")),
                topic(ballot["round"]),
                topic(ballot["voter_address"]),
            ],
            "data": _hex(
                encode(
                    ["bytes32", "bytes", "bytes"],
                    [
                        bytes.fromhex(ballot["digest"][2:]),
                        bytes.fromhex(ballot["body"][2:]),
                        bytes.fromhex(ballot["ranking_bytes"][2:]),
                    ],
                )
            ),
        },
        {
            "event": "CandidatesElected",
            "name": "CandidatesElected log of elections.json's first profile",
            "topics": [
                _hex(keccak(text="CandidatesElected(uint64,uint16[],uint16)")),
                topic(election["round"]),
            ],
            "data": _hex(encode(["uint16[]", "uint16"], [election["candidates"], len(election["ballots"])])),
        },
    ]
    return _document(
        "The contracts' external interface, from the committed ABI (src/seccl/chain/artifacts/): every "
        "function with its canonical signature and 4-byte selector, every event with topic0 = "
        "keccak256(signature) and which parameters are indexed (topics, each a 32-byte word, in order "
        "after topic0; the others are abi.encode'd in the log's data), every custom error with its "
        "selector. The enums Kind {Update, Evaluation, Model} and Offence {DeliveryMismatch, "
        "ModelNotPosted} are uint8 everywhere in the ABI. 'examples' are encoded calls (with the "
        "'returns' data of a view) and logs; the test replays the logs, tieSeedOf and updateFormat "
        "on the real contracts (embedded EVM) and encodes the calls with the committed ABI.",
        contracts=contracts,
        examples=examples,
    )


# ─────────────── gram-gate elections ───────────────


def gram_gate_vector(
    name: str, round_: int, n: int, m: int, ballots: dict[int, Sequence[int]]
) -> dict[str, Any]:
    """Every participant revealed an eligible update (the eligible set is all ``n``); the tie seed
    is given (ties.json derives one from the salts)."""
    eligible = (1 << n) - 1
    seed = keccak(b"gram-gate test vectors")
    outcome = gram_gate_tally(ballots, n, m, eligible=eligible, tie_seed=seed, round_=round_)
    views = {v: view_of_ballot(s, v) for v, s in ballots.items()}
    kept, dropped = outcome.agreed or (0, 0)
    counted = [
        v for v in sorted(ballots) if outcome.agreed and views[v] == outcome.agreed and not dropped >> v & 1
    ]
    return {
        "name": name,
        "round": round_,
        "n": n,
        "m": m,
        "tie_seed": _hex(seed),
        "ballots": [
            {
                "voter": v,
                "entries": list(s),
                "view": {"kept": views[v][0], "dropped": views[v][1], "key": _hex(view_digest(*views[v]))},
            }
            for v, s in sorted(ballots.items())
        ],
        "agreed_view": None if outcome.agreed is None else {"kept": kept, "dropped": dropped},
        "counted_voters": counted,
        "medians": {str(j): median for j, median in sorted(outcome.medians.items())},
        "bar": election_bar(list(outcome.medians.values())) if outcome.medians else None,
        "candidates": list(outcome.candidates),
        "elected_record": _hex(bytes([1, *outcome.candidates])),
    }


def gram_gate_elections_document() -> dict[str, Any]:
    A, D, R = ABSTAIN, DROPPED, REJECTED
    vectors = [
        gram_gate_vector(
            "a coalition of 3 of 7 states its own view (it keeps only itself): only the honest "
            "view has a majority; the four honest candidates all clear the bar",
            1,
            7,
            2,
            {
                **{
                    v: [A if j == v else (D if j >= 4 else 600_000 + 10_000 * j) for j in range(7)]
                    for v in range(4)
                },
                **{v: [A if j == v else (1_000_000 if j >= 4 else D) for j in range(7)] for v in range(4, 7)},
            },
        ),
        gram_gate_vector(
            "3 and 4 are dropped: their ballots share the view but not the medians; 2 (100k) is "
            "under the bar (the medians' lower median 500k minus 3 MADs of 100k)",
            1,
            5,
            1,
            {
                0: [A, 500_000, 100_000, D, D],
                1: [600_000, A, 100_000, D, D],
                2: [600_000, 500_000, A, D, D],
                3: [0, 1_000_000, 0, D, D],
                4: [0, 1_000_000, 0, D, D],
            },
        ),
        gram_gate_vector(
            "3 was rejected (its author still votes); 2 is under the bar (850k) but M = 3 elects it",
            2,
            4,
            3,
            {
                0: [A, 900_000, 100_000, R],
                1: [900_000, A, 100_000, R],
                2: [900_000, 900_000, A, R],
                3: [900_000, 900_000, 100_000, R],
            },
        ),
        gram_gate_vector(
            "two views of three ballots each among 6: no strict majority of the roster, nobody elected",
            1,
            6,
            2,
            {
                **{v: [A if j == v else (D if j == 5 else 500_000) for j in range(6)] for v in range(3)},
                **{v: [A if j == v else 500_000 for j in range(6)] for v in range(3, 6)},
            },
        ),
    ]
    return _document(
        "gram-gate elections (docs/PROTOCOL.md §5a and §5b), computed by "
        "seccl.election.gram_gate.gram_gate_tally, the reference GramGateConsensus equals: for each "
        "profile (n participants, every one eligible, M, the round and a given tie seed), each ballot's "
        "entries and the view they state (kept and dropped bitmaps, keccak256(abi.encode(kept, "
        "dropped))); the view a strict majority of the roster states, the counted voters, each kept "
        "participant's upper median, the election's bar, the candidates best first and the stored "
        "record (a marker byte 0x01, then one byte an index).",
        vectors=vectors,
    )


# ─────────────── writing ───────────────

DOCUMENTS = {
    "messages.json": messages_document,
    "signatures.json": signatures_document,
    "statements.json": statements_document,
    "ties.json": ties_document,
    "ballots.json": ballots_document,
    "elections.json": elections_document,
    "gram_gate_elections.json": gram_gate_elections_document,
    "aggregation.json": aggregation_document,
    "sparse.json": sparse_document,
    "theta0.json": theta0_document,
    "abi.json": abi_document,
}


def render(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def build() -> dict[str, bytes]:
    """Every vector file's exact bytes, by file name."""
    return {name: render(make()) for name, make in DOCUMENTS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files, write nothing"
    )
    parser.add_argument("--out", type=Path, default=VECTORS, help=f"the directory (default: {VECTORS})")
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        stale = [
            n
            for n, data in files.items()
            if not (args.out / n).is_file() or (args.out / n).read_bytes() != data
        ]
        for name in stale:
            print(f"{args.out / name} differs from what the reference code computes", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
