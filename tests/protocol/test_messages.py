"""The three messages round-trip through one canonical encoding, and every malformed input, and
every input outside the session's bounds (dimension, roster, exactly ⌈s·d⌉ coordinates, the value
bound), is rejected by ``decode_message`` with a typed error that says what is wrong."""

from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import pytest

from seccl.chain.accounts import new_account
from seccl.chain.bulletin_board import MessageKind
from seccl.election import ABSTAIN, MAX_SCORE
from seccl.learning.sparse import SparseUpdate, select_top_fraction, update_size
from seccl.protocol.errors import (
    InvalidSignatureError,
    MalformedFieldError,
    MalformedMessageError,
    NonFiniteValueError,
    OversizedMessageError,
    ProtocolError,
    ReplayError,
    UnknownParticipantError,
    ValueOutOfBoundsError,
    WrongRoundError,
    WrongShapeError,
)
from seccl.protocol.messages import (
    HEADER_SIZE,
    SCORE_SCALE,
    VERSION,
    EvaluationMessage,
    ModelMessage,
    UpdateMessage,
    decode_message,
    header_author,
    score_to_ppm,
)

AUTHOR = new_account().address
DIM = 50
SHARE = 0.2
K = update_size(SHARE, DIM)  # the exact number of coordinates every update of this session shares


def header(
    kind: int, round_: int = 3, author: str = AUTHOR, magic: bytes = b"SCCL", version: int = VERSION
) -> bytes:
    return magic + bytes([version, kind]) + round_.to_bytes(8, "big") + bytes.fromhex(author[2:])


SALT = bytes(range(32))


def update_bytes(dim: int, indices: list[int], values: list[float], round_: int = 3) -> bytes:
    """An update encoded by hand, so it can carry what ``SparseUpdate`` refuses (NaN, bad indices)."""
    return (
        header(MessageKind.UPDATE, round_)
        + SALT
        + struct.pack(">II", dim, len(indices))
        + np.asarray(indices, dtype=">u4").tobytes()
        + np.asarray(values, dtype=">f4").tobytes()
    )


def model_bytes(params: list[float]) -> bytes:
    return header(MessageKind.MODEL) + struct.pack(">I", len(params)) + np.asarray(params, ">f4").tobytes()


def real_update() -> SparseUpdate:
    return select_top_fraction(np.random.default_rng(0).normal(size=DIM).astype(np.float32), SHARE)


def spread_indices(count: int, dim: int = DIM) -> list[int]:
    """``count`` distinct sorted coordinates of a ``dim``-parameter model."""
    return np.linspace(0, dim - 1, count).round().astype(int).tolist()


# ─────────────── round trips ───────────────


def test_an_update_message_round_trips_through_its_bytes() -> None:
    message = UpdateMessage(7, AUTHOR, real_update())

    decoded = decode_message(message.to_bytes(), dimension=DIM, update_size=K, max_abs_value=10.0)

    assert isinstance(decoded, UpdateMessage)
    assert (decoded.round, decoded.author, decoded.kind) == (7, AUTHOR, MessageKind.UPDATE)
    assert decoded.update == message.update
    assert len(decoded.update) == K == math.ceil(SHARE * DIM)
    assert decoded.to_bytes() == message.to_bytes()


def test_an_evaluation_message_round_trips_through_its_bytes() -> None:
    message = EvaluationMessage(2, AUTHOR, (0, 812_345, SCORE_SCALE, 1))

    decoded = decode_message(message.to_bytes(), participants=4)

    assert isinstance(decoded, EvaluationMessage)
    assert (decoded.round, decoded.author, decoded.scores) == (2, AUTHOR, (0, 812_345, SCORE_SCALE, 1))
    assert decoded.kind is MessageKind.EVALUATION


def test_an_evaluation_with_abstain_entries_round_trips_through_its_bytes() -> None:
    scores = (ABSTAIN, 812_345, ABSTAIN, MAX_SCORE)  # its own entry (0) and one it could not assess
    message = EvaluationMessage(2, AUTHOR, scores)

    decoded = decode_message(message.to_bytes(), participants=4)

    assert isinstance(decoded, EvaluationMessage)
    assert decoded.scores == scores
    assert ABSTAIN == 2**32 - 1 and SCORE_SCALE == MAX_SCORE


def test_a_model_message_round_trips_through_its_bytes() -> None:
    params = np.random.default_rng(1).normal(size=DIM).astype(np.float32)
    message = ModelMessage(0, AUTHOR, params)

    decoded = decode_message(message.to_bytes(), dimension=DIM)

    assert isinstance(decoded, ModelMessage)
    assert (decoded.round, decoded.author, decoded.kind) == (0, AUTHOR, MessageKind.MODEL)
    assert decoded.params.dtype == np.float32
    np.testing.assert_array_equal(decoded.params, params)


@pytest.mark.parametrize(
    "message",
    [
        UpdateMessage(1, AUTHOR, SparseUpdate(4, [1, 3], [0.5, -2.0])),
        EvaluationMessage(1, AUTHOR, (0, 5)),
        ModelMessage(1, AUTHOR, np.array([1.0, 2.0], dtype=np.float32)),
    ],
    ids=["update", "evaluation", "model"],
)
def test_the_digest_is_the_sha256_of_the_canonical_bytes(message) -> None:
    assert message.digest() == hashlib.sha256(message.to_bytes()).digest()
    assert len(message.to_bytes()) > HEADER_SIZE


def test_the_update_encoding_is_header_salt_sizes_indices_then_values_big_endian() -> None:
    message = UpdateMessage(3, AUTHOR, SparseUpdate(9, [2, 8], [1.5, -0.25]), SALT)

    assert message.to_bytes() == update_bytes(9, [2, 8], [1.5, -0.25])
    assert decode_message(message.to_bytes()).salt == SALT  # type: ignore[union-attr]


@pytest.mark.parametrize("salt", [b"", b"\x01" * 31, b"\x01" * 33], ids=["empty", "31", "33"])
def test_an_update_salt_is_exactly_32_bytes(salt: bytes) -> None:
    with pytest.raises(ValueError, match="salt is 32 bytes"):
        UpdateMessage(3, AUTHOR, SparseUpdate(9, [2], [1.5]), salt)


def test_an_update_body_shorter_than_its_salt_is_malformed() -> None:
    with pytest.raises(MalformedMessageError, match="shorter than its 32-byte salt"):
        decode_message(header(MessageKind.UPDATE, 3) + b"\x00" * 31)


def test_the_evaluation_encoding_is_solidity_abi_encode_packed() -> None:
    scores = (0, 1, 999_999, SCORE_SCALE, ABSTAIN)
    message = EvaluationMessage(0x0102030405060708, AUTHOR, scores)

    expected = (
        b"SCCL"
        + bytes([4, 1])
        + (0x0102030405060708).to_bytes(8, "big")
        + bytes.fromhex(AUTHOR[2:])
        + b"".join(s.to_bytes(4, "big") for s in scores)
    )
    assert message.to_bytes() == expected
    assert len(expected) == 34 + 4 * len(scores)


@pytest.mark.parametrize("score", [2**32, -1])
def test_a_score_outside_u32_cannot_be_encoded(score: int) -> None:
    with pytest.raises(OverflowError):
        EvaluationMessage(1, AUTHOR, (ABSTAIN, score)).to_bytes()


# ─────────────── the header ───────────────


def test_decode_rejects_a_bad_magic() -> None:
    data = header(MessageKind.EVALUATION, magic=b"XXXX")
    with pytest.raises(MalformedMessageError, match="bad magic"):
        decode_message(data)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 5, 255])
def test_decode_rejects_any_version_but_four(version: int) -> None:
    assert VERSION == 4
    assert isinstance(decode_message(header(MessageKind.EVALUATION)), EvaluationMessage)
    with pytest.raises(MalformedMessageError, match=f"unsupported version {version}, expected 4"):
        decode_message(header(MessageKind.EVALUATION, version=version))


@pytest.mark.parametrize("kind", [3, 4, 255])
def test_decode_rejects_an_unknown_kind(kind: int) -> None:
    with pytest.raises(MalformedMessageError, match=f"unknown message kind {kind}"):
        decode_message(header(kind))


@pytest.mark.parametrize("length", [0, 1, HEADER_SIZE - 1])
def test_decode_rejects_bytes_shorter_than_the_header(length: int) -> None:
    data = EvaluationMessage(1, AUTHOR, (1, 2)).to_bytes()[:length]
    with pytest.raises(MalformedMessageError, match="shorter than the header"):
        decode_message(data)


def test_decode_rejects_a_message_over_max_bytes_before_parsing_it() -> None:
    data = EvaluationMessage(1, AUTHOR, (1, 2)).to_bytes()

    assert isinstance(decode_message(data, max_bytes=len(data)), EvaluationMessage)
    with pytest.raises(OversizedMessageError, match="exceeds the limit"):
        decode_message(data, max_bytes=len(data) - 1)
    with pytest.raises(OversizedMessageError):
        decode_message(b"garbage" * 10, max_bytes=10)


@pytest.mark.parametrize(
    "data", [None, "SCCL" + "0" * 40, 12345, [1, 2, 3]], ids=["none", "str", "int", "list"]
)
def test_decode_refuses_what_is_not_bytes_with_a_typed_error(data) -> None:
    with pytest.raises(MalformedMessageError, match="a message is bytes"):
        decode_message(data)
    assert header_author(data) is None


def test_every_typed_error_is_a_protocol_error() -> None:
    for cls in (
        MalformedMessageError,
        MalformedFieldError,
        OversizedMessageError,
        NonFiniteValueError,
        ValueOutOfBoundsError,
        WrongShapeError,
        WrongRoundError,
        UnknownParticipantError,
        InvalidSignatureError,
        ReplayError,
    ):
        assert issubclass(cls, ProtocolError)


# ─────────────── updates ───────────────


def test_decode_rejects_an_update_body_shorter_than_its_size_fields() -> None:
    with pytest.raises(MalformedMessageError, match="shorter than its 8-byte size fields"):
        decode_message(header(MessageKind.UPDATE) + SALT + b"\x00" * 7)


@pytest.mark.parametrize("cut", [1, 4, 8])
def test_decode_rejects_a_truncated_update_body(cut: int) -> None:
    data = UpdateMessage(1, AUTHOR, real_update()).to_bytes()
    with pytest.raises(MalformedMessageError, match="does not hold"):
        decode_message(data[:-cut])


def test_decode_rejects_an_update_with_trailing_bytes() -> None:
    data = UpdateMessage(1, AUTHOR, real_update()).to_bytes()
    with pytest.raises(MalformedMessageError, match="does not hold"):
        decode_message(data + b"\x00")


def test_decode_rejects_an_update_sharing_more_coordinates_than_the_dimension() -> None:
    data = update_bytes(2, [0, 1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(WrongShapeError, match="shares 3 coordinates of a 2-parameter model"):
        decode_message(data)


def test_decode_rejects_an_update_for_another_dimension() -> None:
    data = UpdateMessage(1, AUTHOR, real_update()).to_bytes()

    assert isinstance(decode_message(data, dimension=DIM), UpdateMessage)
    with pytest.raises(WrongShapeError, match=f"{DIM} parameters, expected {DIM + 1}"):
        decode_message(data, dimension=DIM + 1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_decode_rejects_non_finite_update_values(bad: float) -> None:
    data = update_bytes(10, [1, 4, 7], [0.5, bad, -1.0])
    with pytest.raises(NonFiniteValueError, match="update carries 1 NaN/Inf values"):
        decode_message(data, dimension=10)
    with pytest.raises(NonFiniteValueError):  # not mistaken for a value beyond the bound
        decode_message(data, dimension=10, update_size=3, max_abs_value=10.0)


def test_decode_accepts_an_update_of_exactly_the_agreed_size() -> None:
    data = update_bytes(DIM, spread_indices(K), [0.5] * K)

    decoded = decode_message(data, dimension=DIM, update_size=K)

    assert isinstance(decoded, UpdateMessage) and len(decoded.update) == K


def test_decode_rejects_a_dense_update_sharing_every_coordinate() -> None:
    data = update_bytes(DIM, list(range(DIM)), [0.5] * DIM)

    assert isinstance(decode_message(data, dimension=DIM), UpdateMessage)  # well-formed otherwise
    with pytest.raises(WrongShapeError, match=f"shares {DIM} coordinates, the session agreed on exactly {K}"):
        decode_message(data, dimension=DIM, update_size=K)


@pytest.mark.parametrize("count", [K + 1, K - 1, 1, 0])
def test_decode_rejects_an_update_with_more_or_fewer_coordinates_than_agreed(count: int) -> None:
    data = update_bytes(DIM, spread_indices(count), [0.5] * count)

    agreed = f"shares {count} coordinates, the session agreed on exactly {K}"
    with pytest.raises(WrongShapeError, match=agreed):
        decode_message(data, dimension=DIM, update_size=K)


@pytest.mark.parametrize(
    "big", [1e30, -1e30, 10.5, 3.4e38], ids=["1e30", "minus-1e30", "just-over", "float32-max"]
)
def test_decode_rejects_a_finite_update_value_beyond_the_bound(big: float) -> None:
    values = [0.5] * K
    values[K // 2] = big
    data = update_bytes(DIM, spread_indices(K), values)

    assert np.isfinite(np.float32(big))
    assert isinstance(decode_message(data, dimension=DIM, update_size=K), UpdateMessage)  # no bound: fine
    with pytest.raises(ValueOutOfBoundsError, match="exceeds the session's bound 10"):
        decode_message(data, dimension=DIM, update_size=K, max_abs_value=10.0)


def test_decode_accepts_update_values_exactly_at_the_bound() -> None:
    data = update_bytes(DIM, spread_indices(K), [10.0, -10.0] + [0.0] * (K - 2))

    decoded = decode_message(data, dimension=DIM, update_size=K, max_abs_value=10.0)

    assert isinstance(decoded, UpdateMessage)
    assert float(np.abs(decoded.update.values).max()) == 10.0


@pytest.mark.parametrize(
    "indices", [[4, 4, 7], [7, 4, 9], [3, 2, 1]], ids=["duplicate", "unsorted", "decreasing"]
)
def test_decode_rejects_update_indices_that_are_not_strictly_increasing(indices: list[int]) -> None:
    data = update_bytes(10, indices, [1.0, 2.0, 3.0])
    with pytest.raises(MalformedMessageError, match="strictly increasing"):
        decode_message(data, dimension=10)


@pytest.mark.parametrize("last", [10, 2**32 - 1], ids=["dimension", "u32-max"])
def test_decode_rejects_update_indices_out_of_range(last: int) -> None:
    data = update_bytes(10, [0, 5, last], [1.0, 2.0, 3.0])
    with pytest.raises(MalformedMessageError, match=r"must lie in \[0, 10\)"):
        decode_message(data, dimension=10)


# ─────────────── evaluations ───────────────


@pytest.mark.parametrize("extra", [1, 2, 3])
def test_decode_rejects_an_evaluation_body_that_is_not_whole_scores(extra: int) -> None:
    data = header(MessageKind.EVALUATION) + b"\x00" * (4 * 2 + extra)
    with pytest.raises(MalformedMessageError, match="not whole 4-byte scores"):
        decode_message(data)


@pytest.mark.parametrize("count", [0, 3, 5])
def test_decode_rejects_an_evaluation_that_does_not_score_every_participant(count: int) -> None:
    data = EvaluationMessage(1, AUTHOR, (1,) * count).to_bytes()
    with pytest.raises(WrongShapeError, match=f"scores {count} participants, expected 4"):
        decode_message(data, participants=4)


@pytest.mark.parametrize("score", [SCORE_SCALE + 1, 2**31, ABSTAIN - 3])
def test_decode_rejects_a_score_above_one_million_ppm_that_is_no_mark(score: int) -> None:
    data = header(MessageKind.EVALUATION) + (0).to_bytes(4, "big") + score.to_bytes(4, "big")
    with pytest.raises(MalformedMessageError, match="exceeds 1000000 parts per million and is not ABSTAIN"):
        decode_message(data, participants=2)


@pytest.mark.parametrize("mark", [ABSTAIN - 1, ABSTAIN - 2])
def test_decode_accepts_the_gram_gate_marks_dropped_and_rejected(mark: int) -> None:
    # Which entries may carry them is the consensus contract's rule (a Borda contract refuses them).
    data = header(MessageKind.EVALUATION) + (0).to_bytes(4, "big") + mark.to_bytes(4, "big")
    message = decode_message(data, participants=2)
    assert isinstance(message, EvaluationMessage) and message.scores == (0, mark)


def test_decode_accepts_abstain_as_the_one_score_above_one_million_ppm() -> None:
    data = header(MessageKind.EVALUATION) + ABSTAIN.to_bytes(4, "big") + SCORE_SCALE.to_bytes(4, "big")

    decoded = decode_message(data, participants=2)

    assert isinstance(decoded, EvaluationMessage) and decoded.scores == (ABSTAIN, SCORE_SCALE)


# ─────────────── models ───────────────


def test_decode_rejects_a_truncated_model() -> None:
    data = ModelMessage(0, AUTHOR, np.ones(DIM, dtype=np.float32)).to_bytes()
    with pytest.raises(MalformedMessageError, match=f"does not hold {DIM} floats"):
        decode_message(data[:-2])
    with pytest.raises(MalformedMessageError, match="4-byte size field"):
        decode_message(header(MessageKind.MODEL) + b"\x00\x00")


def test_decode_rejects_a_model_of_another_dimension() -> None:
    data = ModelMessage(0, AUTHOR, np.ones(DIM, dtype=np.float32)).to_bytes()
    with pytest.raises(WrongShapeError, match=f"model of {DIM} parameters, expected {DIM - 1}"):
        decode_message(data, dimension=DIM - 1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_decode_rejects_non_finite_model_params(bad: float) -> None:
    data = model_bytes([0.0, bad, 1.0, bad])
    with pytest.raises(NonFiniteValueError, match="model carries 2 NaN/Inf values"):
        decode_message(data, dimension=4)


# ─────────────── scores ───────────────


@pytest.mark.parametrize(
    ("score", "ppm"), [(0.0, 0), (1.0, SCORE_SCALE), (0.5, 500_000), (0.1234567, 123_457)]
)
def test_score_to_ppm_scales_a_score_in_the_unit_interval(score: float, ppm: int) -> None:
    assert score_to_ppm(score) == ppm


@pytest.mark.parametrize("score", [float("nan"), float("inf"), -1e-9, -0.5, 1.000001, 2.0])
def test_score_to_ppm_refuses_scores_outside_the_unit_interval(score: float) -> None:
    with pytest.raises(ValueError, match=r"finite number in \[0, 1\]"):
        score_to_ppm(score)


def test_a_lowercase_author_round_trips_to_the_same_checksummed_author() -> None:
    lowercase = "0x" + "ab" * 20
    message = EvaluationMessage(1, lowercase, (0, 5))

    decoded = decode_message(message.to_bytes())

    assert decoded.author == message.author != lowercase


def test_an_update_dimension_beyond_uint32_is_refused_before_encoding() -> None:
    with pytest.raises(ValueError, match="dimension"):
        SparseUpdate(2**32, np.array([2**32 - 1]), np.array([1.0], dtype=np.float32))
