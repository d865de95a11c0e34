"""SecCL's three messages, each with one canonical byte encoding and a SHA-256 digest.

Every message starts with the same 34-byte header::

    b"SCCL" | version u8 | kind u8 | round u64 | author (20 bytes)

and all integers are big-endian. An update's body starts with its author's secret 32-byte salt
(its share of the round's tie seed, hidden by the commitment until the reveal), then the model's
size, the count, the indices and the values; the bulletin board checks that layout at the reveal.
The evaluation message's body is one big-endian u32 per participant, so its encoding is exactly
``abi.encodePacked(bytes4("SCCL"), uint8(4), uint8(1), uint64 round, address voter, bytes scores)``
with those ``4·N`` bytes: the consensus contract takes the body as it is, recomputes the digest
from it and checks the voter's signature itself.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from eth_utils import to_checksum_address

from seccl.chain.bulletin_board import MessageKind
from seccl.election import ABSTAIN, MAX_SCORE
from seccl.election.gram_gate import DROPPED, REJECTED
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.errors import (
    MalformedMessageError,
    NonFiniteValueError,
    OversizedMessageError,
    ValueOutOfBoundsError,
    WrongShapeError,
)

MAGIC = b"SCCL"
VERSION = 4  # 4: updates carry a salt and are revealed on chain (3: 4-byte scores; 2: 32-byte words)
_HEADER = struct.Struct(">4sBBQ20s")
HEADER_SIZE = _HEADER.size
SCORE_BYTES = 4  # one big-endian u32 per score, as the consensus contract reads them
SCORE_SCALE = MAX_SCORE  # scores travel as parts per million of macro-F1
SALT_BYTES = 32
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def _header(kind: MessageKind, round_: int, author: str) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, int(kind), round_, bytes.fromhex(author[2:]))


def _checksummed(message: object) -> None:
    # One spelling of each address, so that decode(encode(m)).author == m.author.
    object.__setattr__(message, "author", to_checksum_address(message.author))  # type: ignore[attr-defined]


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, eq=False)
class UpdateMessage:
    """Type (a): a participant's sparse update of round ``round``, with its secret ``salt``."""

    kind: ClassVar[MessageKind] = MessageKind.UPDATE
    round: int
    author: str
    update: SparseUpdate
    salt: bytes = field(default=b"\x00" * SALT_BYTES, repr=False)

    def __post_init__(self) -> None:
        _checksummed(self)
        if not isinstance(self.salt, bytes) or len(self.salt) != SALT_BYTES:
            raise ValueError(f"an update's salt is {SALT_BYTES} bytes")

    def to_bytes(self) -> bytes:
        u = self.update
        return (
            _header(self.kind, self.round, self.author)
            + self.salt
            + struct.pack(">II", u.dimension, len(u))
            + u.indices.astype(">u4").tobytes()
            + u.values.astype(">f4").tobytes()
        )

    def digest(self) -> bytes:
        return _digest(self.to_bytes())


@dataclass(frozen=True, eq=False)
class EvaluationMessage:
    """Type (b): a participant's scores (macro-F1 in parts per million) for every participant,
    by index, its own entry zero."""

    kind: ClassVar[MessageKind] = MessageKind.EVALUATION
    round: int
    author: str
    scores: tuple[int, ...]

    def __post_init__(self) -> None:
        _checksummed(self)

    def to_bytes(self) -> bytes:
        return _header(self.kind, self.round, self.author) + b"".join(
            s.to_bytes(SCORE_BYTES, "big") for s in self.scores
        )

    def digest(self) -> bytes:
        return _digest(self.to_bytes())


@dataclass(frozen=True, eq=False)
class ModelMessage:
    """The global model the server publishes: the flat float32 parameters produced by ``round``."""

    kind: ClassVar[MessageKind] = MessageKind.MODEL
    round: int
    author: str
    params: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        _checksummed(self)

    def to_bytes(self) -> bytes:
        return (
            _header(self.kind, self.round, self.author)
            + struct.pack(">I", len(self.params))
            + np.asarray(self.params, dtype=">f4").tobytes()
        )

    def digest(self) -> bytes:
        return _digest(self.to_bytes())


Message = UpdateMessage | EvaluationMessage | ModelMessage


def score_to_ppm(score: float) -> int:
    """A score in [0, 1] as the integer parts per million the contract compares."""
    if not np.isfinite(score) or not 0.0 <= score <= 1.0:
        raise ValueError(f"a score must be a finite number in [0, 1], got {score}")
    return round(score * SCORE_SCALE)


def header_author(data: bytes) -> str | None:
    """The author named in a message's header, read without decoding the rest (None if too short)."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < HEADER_SIZE:
        return None
    return to_checksum_address(_HEADER.unpack_from(data)[4])


def decode_message(
    data: bytes,
    *,
    dimension: int | None = None,
    participants: int | None = None,
    update_size: int | None = None,
    max_abs_value: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Message:
    """Parse ``data`` into a message, or raise a typed :class:`ProtocolError` saying what is wrong.

    The session's bounds are checked when given: ``dimension`` (the model's parameter count),
    ``participants`` (every evaluation scores each of them), ``update_size`` (an update carries
    exactly ⌈s·d⌉ coordinates, no more and no fewer) and ``max_abs_value`` (no update value
    beyond it in magnitude).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedMessageError(f"a message is bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise OversizedMessageError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    if len(data) < HEADER_SIZE:
        raise MalformedMessageError(f"message of {len(data)} bytes is shorter than the header")
    magic, version, kind_value, round_, author_bytes = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise MalformedMessageError(f"bad magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise MalformedMessageError(f"unsupported version {version}, expected {VERSION}")
    try:
        kind = MessageKind(kind_value)
    except ValueError:
        raise MalformedMessageError(f"unknown message kind {kind_value}") from None
    author = to_checksum_address(author_bytes)
    body = data[HEADER_SIZE:]
    if kind is MessageKind.UPDATE:
        if len(body) < SALT_BYTES:
            raise MalformedMessageError(f"update body is shorter than its {SALT_BYTES}-byte salt")
        update = _decode_update(body[SALT_BYTES:], dimension, update_size, max_abs_value)
        return UpdateMessage(round_, author, update, bytes(body[:SALT_BYTES]))
    if kind is MessageKind.EVALUATION:
        return EvaluationMessage(round_, author, _decode_scores(body, participants))
    return ModelMessage(round_, author, _decode_model(body, dimension))


def _decode_update(
    body: bytes, dimension: int | None, update_size: int | None, max_abs_value: float | None
) -> SparseUpdate:
    if len(body) < 8:
        raise MalformedMessageError("update body is shorter than its 8-byte size fields")
    dim, count = struct.unpack_from(">II", body)
    if dimension is not None and dim != dimension:
        raise WrongShapeError(f"update for a model of {dim} parameters, expected {dimension}")
    if count > dim:
        raise WrongShapeError(f"update shares {count} coordinates of a {dim}-parameter model")
    if update_size is not None and count != update_size:
        raise WrongShapeError(
            f"update shares {count} coordinates, the session agreed on exactly {update_size}"
        )
    if len(body) != 8 + 8 * count:
        raise MalformedMessageError(
            f"update body of {len(body)} bytes does not hold {count} index/value pairs"
        )
    indices = np.frombuffer(body, dtype=">u4", count=count, offset=8).astype(np.uint32)
    values = np.frombuffer(body, dtype=">f4", count=count, offset=8 + 4 * count).astype(np.float32)
    if not np.isfinite(values).all():
        raise NonFiniteValueError(f"update carries {int((~np.isfinite(values)).sum())} NaN/Inf values")
    # In float32, as the board compares (a bound that float32 cannot hold rounds the same way).
    if max_abs_value is not None and count and np.abs(values).max() > np.float32(max_abs_value):
        raise ValueOutOfBoundsError(
            f"update value {float(np.abs(values).max()):g} exceeds the session's bound {max_abs_value:g}"
        )
    try:
        return SparseUpdate(dim, indices, values)
    except ValueError as exc:
        raise MalformedMessageError(f"invalid sparse update: {exc}") from exc


def _decode_scores(body: bytes, participants: int | None) -> tuple[int, ...]:
    if len(body) % SCORE_BYTES:
        raise MalformedMessageError(f"evaluation body of {len(body)} bytes is not whole 4-byte scores")
    count = len(body) // SCORE_BYTES
    if participants is not None and count != participants:
        raise WrongShapeError(f"evaluation scores {count} participants, expected {participants}")
    scores = tuple(int(s) for s in np.frombuffer(body, dtype=">u4", count=count))
    # DROPPED and REJECTED are the gram-gate ballot's marks; which entries may carry which mark is
    # the consensus contract's rule, and depends on the round (seccl.election.gram_gate.ballot_error).
    if any(s > MAX_SCORE and s not in (ABSTAIN, DROPPED, REJECTED) for s in scores):
        raise MalformedMessageError(
            f"a score exceeds {MAX_SCORE} parts per million and is not ABSTAIN, DROPPED or REJECTED"
        )
    return scores


def _decode_model(body: bytes, dimension: int | None) -> np.ndarray:
    if len(body) < 4:
        raise MalformedMessageError("model body is shorter than its 4-byte size field")
    (dim,) = struct.unpack_from(">I", body)
    if dimension is not None and dim != dimension:
        raise WrongShapeError(f"model of {dim} parameters, expected {dimension}")
    if len(body) != 4 + 4 * dim:
        raise MalformedMessageError(f"model body of {len(body)} bytes does not hold {dim} floats")
    params = np.frombuffer(body, dtype=">f4", count=dim, offset=4).astype(np.float32)
    if not np.isfinite(params).all():
        raise NonFiniteValueError(f"model carries {int((~np.isfinite(params)).sum())} NaN/Inf values")
    return params


def invalid_entry(data: bytes, *, dimension: int, update_size: int, max_abs_value: float) -> int | None:
    """The first entry of an update, in a format the board accepted at its reveal (header, sizes
    and length), that breaks a rule, or None: the position a proof of invalidity names.

    Exactly the board's ``proveInvalid`` check: an index not below ``dimension`` or not above the
    previous one, or a value whose float32 magnitude bits exceed the bound's (NaN and infinities
    among them). For such bytes, :func:`decode_message` with the session's bounds fails exactly
    when this returns a position.
    """
    entries = HEADER_SIZE + SALT_BYTES + 8
    if len(data) != entries + 8 * update_size:
        raise MalformedMessageError(
            f"an update of {update_size} entries is {entries + 8 * update_size} bytes"
        )
    indices = np.frombuffer(data, dtype=">u4", count=update_size, offset=entries).astype(np.int64)
    bits = np.frombuffer(data, dtype=">u4", count=update_size, offset=entries + 4 * update_size)
    bound = int(np.array([max_abs_value], dtype="<f4").view("<u4")[0])
    bad = (indices >= dimension) | ((bits & 0x7FFFFFFF) > bound)
    bad[1:] |= indices[1:] <= indices[:-1]
    found = np.flatnonzero(bad)
    return int(found[0]) if len(found) else None
