"""Commit, then reveal: the board takes an update's bytes only after the commitments have closed and
only when they hash to the commitment and have the session's format; anyone can prove a revealed
update invalid by naming one entry; only revealed, valid updates are eligible; each round's tie
seed is the XOR of its revealed salts. Every revert path on both EVMs."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seccl.chain import errors
from seccl.chain.backends import ChainBackend
from seccl.election import borda_tally
from seccl.protocol.messages import SALT_BYTES, invalid_entry
from tests.chain.helpers import FORMAT, Session, deploy, rewound

ENTRIES = 74  # header 34, salt 32, dimension and count 8
SALT_AT = 34


@pytest.fixture
def session(backend: ChainBackend) -> Session:
    return deploy(backend, n=4, m=2, tag="reveal")


def _commit_all(session: Session, round_: int = 1) -> None:
    for i in range(session.n):
        session.post_update(round_, i)


def _salt(message: bytes) -> bytes:
    return message[SALT_AT : SALT_AT + SALT_BYTES]


def _committed(session: Session, index: int, message: bytes, round_: int = 1) -> None:
    """Commit ``message`` (any bytes) as participant ``index``'s update."""
    session.post_update(round_, index, hashlib.sha256(message).digest())


def _with_entry(
    message: bytes, position: int, *, index: int | None = None, value: float | None = None
) -> bytes:
    """``message`` with entry ``position``'s index or value replaced (float32 bits as given)."""
    data = bytearray(message)
    if index is not None:
        struct.pack_into(">I", data, ENTRIES + 4 * position, index)
    if value is not None:
        struct.pack_into(">f", data, ENTRIES + 4 * FORMAT.update_size + 4 * position, value)
    return bytes(data)


# ─────────────────────────── reveals ───────────────────────────


def test_revealed_bytes_are_read_back_from_calldata_by_anyone_and_make_their_authors_eligible(
    session: Session,
) -> None:
    _commit_all(session)
    assert session.board.round_info(1).eligible == ()  # committed is not eligible

    receipts = [session.reveal(1, i) for i in range(session.n)]

    reader, _ = session.reader()  # an outsider's own connection, no server involved
    revealed = reader.revealed_updates(1, from_block=session.first_block)
    for i, receipt in enumerate(receipts):
        found = revealed[session.accounts[i].address]
        assert found.message == session.update_message(1, i) and found.tx_hash == receipt.tx_hash
        assert found.digest == session.update_digest(1, i)
    info = reader.round_info(1)
    assert info.reveal_bitmap == info.update_bitmap == 0b1111 and info.eligible == (0, 1, 2, 3)
    assert info.reveal_deadline == info.update_deadline + session.terms.phases.reveal
    assert info.ballot_deadline == info.reveal_deadline + session.terms.phases.ballot


def test_the_tie_seed_is_the_xor_of_the_revealed_salts_and_a_missing_reveal_adds_nothing(
    session: Session,
) -> None:
    _commit_all(session)
    seed = bytes(32)
    for i in (0, 2, 3):
        session.reveal(1, i)
        seed = bytes(a ^ b for a, b in zip(seed, _salt(session.update_message(1, i)), strict=True))
        assert session.board.tie_seed_of(1) == seed
    session.pass_reveal_phase(1)
    assert session.board.tie_seed_of(1) == seed and session.board.round_info(1).eligible == (0, 2, 3)


def test_a_reveal_before_the_commitments_close_is_refused(session: Session) -> None:
    session.post_update(1, 0)
    with pytest.raises(errors.BulletinRevealPhaseNotOpen):
        session.reveal(1, 0)
    session.pass_update_phase(1, reveal=False)  # the clock closes the commitments
    session.reveal(1, 0)
    assert session.board.round_info(1).has_revealed(0)


def test_a_reveal_after_its_deadline_is_refused_and_leaves_the_author_ineligible(session: Session) -> None:
    _commit_all(session)
    session.pass_reveal_phase(1)
    with pytest.raises(errors.BulletinRevealPhaseOver):
        session.reveal(1, 1)
    assert session.board.round_info(1).eligible == ()


def test_bytes_other_than_the_commitment_are_refused(session: Session) -> None:
    _commit_all(session)
    other = session.update_message(1, 0)
    with pytest.raises(errors.BulletinRevealMismatch):
        session.reveal(1, 1, other)


def test_a_copy_of_another_participants_update_cannot_be_revealed_as_ones_own(session: Session) -> None:
    # The copier can only see the bytes once they are revealed, after the commitments closed; even
    # committing the victim's exact digest (seen on the board) does not help: the header names the victim.
    victim = session.update_message(1, 0)
    session.post_update(1, 0)
    _committed(session, 1, victim)
    session.post_updates(1, [2, 3])  # the commitments close; the honest ones are revealed
    assert session.board.round_info(1).has_revealed(0)
    with pytest.raises(errors.BulletinMalformedUpdate) as caught:
        session.reveal(1, 1, victim)
    assert caught.value.fields["offset"] == 14  # the author field


def test_only_the_author_may_reveal_so_nobody_can_hide_its_bytes_behind_a_relay(session: Session) -> None:
    # Someone who copied the bytes from the author's pending transaction (the server, another
    # participant) cannot reveal them first, from where no reader would look.
    session.post_updates(1, [0, 1, 2])
    session.pass_update_phase(1, reveal=False)
    message = session.update_message(1, 0)
    other, _ = session.own_clients(session.accounts[1])
    for relay, caller in ((session.board, session.server), (other, session.accounts[1])):
        with pytest.raises(errors.BulletinNotAuthor) as caught:
            relay.reveal_update(1, session.accounts[0].address, message)
        assert caught.value.fields == {"author": session.accounts[0].address, "caller": caller.address}
    session.reveal(1, 0)
    reader, _ = session.reader()
    revealed = reader.revealed_updates(1, from_block=session.first_block)
    assert revealed[session.accounts[0].address].message == message


def test_a_second_reveal_an_uncommitted_author_and_a_stranger_are_refused(session: Session) -> None:
    session.post_updates(1, [0, 1, 2])
    session.pass_update_phase(1, reveal=False)
    session.reveal(1, 0)
    with pytest.raises(errors.BulletinAlreadyRevealed):
        session.reveal(1, 0)
    with pytest.raises(errors.BulletinNotCommitted):
        session.reveal(1, 3)
    with pytest.raises(errors.BulletinUnknownAuthor):
        session.board.reveal_update(1, session.server.address, session.update_message(1, 0))


@pytest.mark.parametrize(
    ("offset", "change"),
    [
        (0, lambda b: b"XCCL" + b[4:]),
        (4, lambda b: b[:4] + b"\x03" + b[5:]),
        (5, lambda b: b[:5] + b"\x01" + b[6:]),
        (6, lambda b: b[:6] + (2).to_bytes(8, "big") + b[14:]),
        (66, lambda b: b[:66] + (FORMAT.dimension + 1).to_bytes(4, "big") + b[70:]),
        (70, lambda b: b[:70] + (FORMAT.update_size - 1).to_bytes(4, "big") + b[74:]),
        (-1, lambda b: b + b"\x00" * 8),
    ],
    ids=["magic", "version", "kind", "round", "dimension", "count", "length"],
)
def test_committed_bytes_outside_the_sessions_format_can_never_be_revealed(
    session: Session, offset, change
) -> None:
    bad = change(session.update_message(1, 0))
    _committed(session, 0, bad)
    session.post_updates(1, [1, 2, 3])
    with pytest.raises(errors.BulletinMalformedUpdate) as caught:
        session.reveal(1, 0, bad)
    assert caught.value.fields["offset"] == (len(bad) if offset == -1 else offset)
    assert not session.board.round_info(1).has_revealed(0)


# ─────────────────────────── proofs of invalidity ───────────────────────────


@pytest.mark.parametrize(
    ("position", "entry"),
    [
        (1, {"index": FORMAT.dimension}),
        (2, {"index": 0}),  # not above entry 1's index
        (0, {"value": float("nan")}),
        (1, {"value": float("-inf")}),
        (2, {"value": -10.5}),
    ],
    ids=["index-out-of-range", "not-ascending", "nan", "infinite", "beyond-bound"],
)
def test_a_revealed_update_proven_invalid_is_out_and_never_takes_a_slot(
    session: Session, position, entry
) -> None:
    bad = _with_entry(session.update_message(1, 0), position, **entry)
    assert invalid_entry(bad, **_format()) == position
    _committed(session, 0, bad)
    session.post_updates(1, [1, 2, 3])
    session.reveal(1, 0, bad)
    # Every voter ranks the invalid update first; the proof comes after the ballots, before the tally.
    for voter in range(1, session.n):
        session.vote(1, voter, session.scores(voter, [900_000, 100_000, 100_000, 100_000]))
    prover, _ = session.own_clients(session.accounts[2])

    receipt = prover.prove_invalid(1, session.accounts[0].address, bad, position)

    info = session.board.round_info(1)
    assert info.is_invalid(0) and info.eligible == (1, 2, 3)
    assert session.board.invalidity_proofs(session.first_block) == [
        (1, session.accounts[0].address, position, session.accounts[2].address, receipt.tx_hash)
    ]
    session.pass_ballot_phase(1)
    assert 0 not in session.tally(1).candidates
    with pytest.raises(errors.BulletinAlreadyInvalid):
        prover.prove_invalid(1, session.accounts[0].address, bad, position)


def _format() -> dict:
    return {
        "dimension": FORMAT.dimension,
        "update_size": FORMAT.update_size,
        "max_abs_value": FORMAT.max_abs_value,
    }


@pytest.mark.parametrize("position", [0, 2, 3, 2**255], ids=["first", "last", "past-the-end", "huge"])
def test_a_proof_against_a_valid_entry_is_refuted(session: Session, position: int) -> None:
    session.post_updates(1)
    with pytest.raises(errors.BulletinProofRefuted):
        session.board.prove_invalid(1, session.accounts[0].address, session.update_message(1, 0), position)
    assert session.board.round_info(1).eligible == (0, 1, 2, 3)


def test_a_proof_needs_the_revealed_bytes_of_a_revealed_update(session: Session) -> None:
    session.post_updates(1, [0, 1, 2])
    session.pass_update_phase(1, reveal=False)
    session.reveal(1, 0)
    bad = _with_entry(session.update_message(1, 0), 0, value=float("nan"))
    with pytest.raises(errors.BulletinRevealMismatch):
        session.board.prove_invalid(1, session.accounts[0].address, bad, 0)
    with pytest.raises(errors.BulletinNotRevealed):
        session.board.prove_invalid(1, session.accounts[1].address, session.update_message(1, 1), 0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), min_size=3, max_size=3),
)
def test_the_reference_names_exactly_the_entries_the_board_upholds(backend: ChainBackend, data) -> None:
    """invalid_entry (the Python reference) and proveInvalid (the board) agree entry by entry on
    arbitrary index and value bits."""
    with rewound(backend):
        session = deploy(backend, n=4, m=2, tag="reveal-property")
        message = bytearray(session.update_message(1, 0))
        for k, (index, bits) in enumerate(data):
            struct.pack_into(">I", message, ENTRIES + 4 * k, index % (2 * FORMAT.dimension))
            struct.pack_into(">I", message, ENTRIES + 4 * FORMAT.update_size + 4 * k, bits)
        message = bytes(message)
        _committed(session, 0, message)
        session.post_updates(1, [1, 2, 3])
        session.reveal(1, 0, message)
        bad = [p for p in range(FORMAT.update_size) if _entry_invalid(message, p)]
        first = invalid_entry(message, **_format())
        assert first == (bad[0] if bad else None)
        for position in range(FORMAT.update_size):
            if position not in bad:
                with pytest.raises(errors.BulletinProofRefuted):
                    session.board.prove_invalid(1, session.accounts[0].address, message, position)
        if first is not None:
            session.board.prove_invalid(1, session.accounts[0].address, message, first)
            assert session.board.round_info(1).is_invalid(0)


def _entry_invalid(message: bytes, position: int) -> bool:
    """The rule for one entry, written out independently of ``invalid_entry``."""
    (index,) = struct.unpack_from(">I", message, ENTRIES + 4 * position)
    previous = struct.unpack_from(">I", message, ENTRIES + 4 * (position - 1))[0] if position else None
    (value,) = struct.unpack_from(">f", message, ENTRIES + 4 * FORMAT.update_size + 4 * position)
    return (
        index >= FORMAT.dimension
        or (previous is not None and index <= previous)
        or not np.isfinite(value)
        or abs(value) > FORMAT.max_abs_value
    )


# ─────────────────────────── ballots wait for the reveals ───────────────────────────


def test_ballots_open_when_every_commitment_is_revealed_or_at_the_reveal_deadline(session: Session) -> None:
    _commit_all(session)
    session.reveal(1, 0)
    with pytest.raises(errors.ConsensusBallotPhaseNotOpen):
        session.vote(1, 1, session.scores(1, 500_000))
    for i in (1, 2):
        session.reveal(1, i)
    session.pass_reveal_phase(1)  # participant 3 never reveals: its own failure, on the chain
    session.vote(1, 1, session.scores(1, [600_000, 0, 500_000, 700_000]))
    ballots = {1: tuple(session.scores(1, [600_000, 0, 500_000, 700_000]))}
    for voter in (0, 2):
        scores = session.scores(voter, [400_000, 300_000, 200_000, 900_000])
        session.vote(1, voter, scores)
        ballots[voter] = tuple(scores)
    session.pass_ballot_phase(1)  # participant 3 does not vote either
    record = session.tally(1)
    assert 3 not in record.candidates
    seed = session.board.tie_seed_of(1)
    expected = borda_tally(ballots, session.n, session.m, tie_seed=seed, round_=1, eligible=(0, 1, 2))
    assert record.candidates == expected.candidates
