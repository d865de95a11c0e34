"""The bulletin board records signed digests in round order, takes posts from anyone holding the
author's signature, rejects every bad post with a typed error, and upholds only true accusations."""

from __future__ import annotations

import pytest

from seccl.chain import errors
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import (
    BoardRecord,
    BulletinBoardClient,
    DeploySettings,
    MessageKind,
    Offence,
    Phases,
)
from seccl.chain.signing import SigningDomain
from seccl.protocol.statements import Delivery
from tests.chain.helpers import PHASES, Session, deploy, digest, rewound, server_account
from tests.conftest import make_accounts

ZERO_ADDRESS = "0x" + "00" * 20


@pytest.fixture
def session(backend: ChainBackend) -> Session:
    return deploy(backend, n=4, m=2, tag="board")


def _tally_round_one(session: Session) -> None:
    """Round 1 with every update and ballot in, tallied: its model may be posted."""
    session.post_updates(1)
    for voter in range(session.n):
        session.vote(1, voter, session.scores(voter, 500_000))
    session.tally(1)


# ─────────────────────────── deployment and round order ───────────────────────────


def test_deployment_records_the_initial_model_and_opens_round_one_with_the_fixed_phases(
    session: Session,
) -> None:
    board = session.board
    info = board.round_info(1)

    assert board.current_round() == 1
    assert board.server() == session.server.address
    assert board.consensus() == session.consensus.address
    assert board.participants() == [a.address for a in session.accounts]
    assert board.participant_index(session.accounts[2].address) == 2
    assert board.participant_index(session.server.address) is None
    assert board.phases() == PHASES
    assert board.nonce() == session.terms.nonce and board.update_format() == session.terms.update_format
    assert board.digest_of(0, MessageKind.MODEL, session.server.address) == session.terms.initial_model
    assert info.opened_at > 0 and info.updates == 0 and not info.model_posted
    assert info.update_deadline == info.opened_at + PHASES.update
    assert info.reveal_deadline == info.update_deadline + PHASES.reveal
    assert info.ballot_deadline == info.reveal_deadline + PHASES.ballot
    assert info.model_deadline == info.ballot_deadline + PHASES.model
    assert board.round_info(2).opened_at == 0
    initial = (BoardRecord(0, MessageKind.MODEL, session.server.address, session.terms.initial_model),)
    assert tuple(record for record, _ in board.records(from_block=session.first_block)) == initial


def test_a_relayed_update_is_recorded_and_found_by_round_author_and_tx_id(session: Session) -> None:
    author = session.accounts[1]
    update = digest("update of participant 1")

    receipt = session.post_update(1, 1, update)

    record = BoardRecord(1, MessageKind.UPDATE, author.address, update)
    assert session.board.digest_of(1, MessageKind.UPDATE, author.address) == update
    assert session.board.updates_of(1) == [None, update, None, None]
    assert session.board.record_in_transaction(receipt.tx_hash) == record
    assert session.board.records(from_block=session.first_block)[-1] == (record, receipt.tx_hash)
    info = session.board.round_info(1)
    assert info.updates == 1 and info.has_update(1)
    assert info.eligible == () and not info.has_revealed(1)  # committed, not revealed: not yet eligible


def test_a_participant_posts_its_own_update_from_its_own_account(session: Session) -> None:
    author = session.accounts[3]
    own_board, _ = session.own_clients(author)
    update = digest("posted by the author, the server silent")

    receipt = session.post_update(1, 3, update, via=own_board)

    sent = session.w3.eth.get_transaction(receipt.tx_hash)  # type: ignore[arg-type]
    assert sent["from"] == author.address
    reader, _ = session.reader()
    assert reader.sender is None
    assert reader.record_in_transaction(receipt.tx_hash) == BoardRecord(
        1, MessageKind.UPDATE, author.address, update
    )


def test_anyone_may_relay_an_update_signed_by_its_author(session: Session) -> None:
    stranger = make_accounts(1, "board-stranger")[0]
    stranger_board, _ = session.own_clients(stranger)

    session.post_update(1, 0, via=stranger_board)

    assert session.board.digest_of(
        1, MessageKind.UPDATE, session.accounts[0].address
    ) == session.update_digest(1, 0)


def test_a_read_only_client_refuses_to_write(session: Session) -> None:
    reader, _ = session.reader()

    with pytest.raises(errors.ChainError, match="read-only"):
        session.post_update(1, 0, via=reader)


def test_the_python_signed_hash_equals_the_contracts(session: Session) -> None:
    message = digest("hash rule")
    onchain = session.board.contract.functions.signedHash(7, int(MessageKind.EVALUATION), message).call()

    assert bytes(onchain) == session.domain.signed_hash(7, MessageKind.EVALUATION, message)


def test_posting_the_model_of_a_tallied_round_opens_the_next_round(session: Session) -> None:
    _tally_round_one(session)
    model = session.model_digest(1)

    receipt = session.post_model(1, model)

    board = session.board
    assert board.current_round() == 2
    assert board.digest_of(1, MessageKind.MODEL, session.server.address) == model
    assert board.round_info(1).model_posted
    opened = board.round_info(2)
    block = session.w3.eth.get_block(receipt.block_number)
    assert opened.opened_at == int(block["timestamp"]) and opened.updates == 0
    events = board.contract.events.RoundOpened().get_logs(from_block=receipt.block_number)
    assert [(int(e["args"]["round"]), int(e["args"]["openedAt"])) for e in events] == [(2, opened.opened_at)]
    session.post_update(2, 0)  # round 2 takes updates now
    assert board.updates_of(2)[0] == session.update_digest(2, 0)


def test_anyone_may_relay_the_servers_signed_model(session: Session) -> None:
    _tally_round_one(session)
    own_board, _ = session.own_clients(session.accounts[0])
    model = session.model_digest(1)

    own_board.post_model(1, model, session.sign(session.server, 1, MessageKind.MODEL, model))

    assert session.board.current_round() == 2


def test_the_model_cannot_be_posted_before_the_election_is_tallied(session: Session) -> None:
    session.post_updates(1)

    with pytest.raises(errors.BulletinNotTallied) as caught:
        session.post_model(1)

    assert caught.value.fields == {"round": 1}
    assert session.board.current_round() == 1


def test_a_model_not_signed_by_the_server_is_refused(session: Session) -> None:
    _tally_round_one(session)
    model = session.model_digest(1)
    participant = session.accounts[0]

    with pytest.raises(errors.BulletinInvalidSignature) as caught:
        session.board.post_model(1, model, session.sign(participant, 1, MessageKind.MODEL, model))

    assert caught.value.fields == {"expected": session.server.address, "signer": participant.address}


def test_a_post_for_a_round_not_yet_open_is_refused(session: Session) -> None:
    with pytest.raises(errors.BulletinRoundNotOpen) as caught:
        session.post_update(2, 0)

    assert caught.value.fields == {"round": 2, "currentRound": 1}
    with pytest.raises(errors.BulletinRoundNotOpen):
        session.post_model(2)


def test_a_post_for_a_round_whose_model_is_on_the_board_is_refused(session: Session) -> None:
    _tally_round_one(session)
    session.post_model(1)

    with pytest.raises(errors.BulletinRoundClosed) as caught:
        session.post_update(1, 0, digest("too late"))
    assert caught.value.fields == {"round": 1, "currentRound": 2}
    with pytest.raises(errors.BulletinRoundClosed):
        session.post_model(1, digest("a second model"))
    with pytest.raises(errors.BulletinRoundClosed):
        session.post_model(0, digest("another initial model"))


def test_an_update_after_the_update_phase_is_refused(session: Session) -> None:
    session.post_update(1, 0)
    deadline = session.board.round_info(1).update_deadline
    session.pass_update_phase(1)

    with pytest.raises(errors.BulletinUpdatePhaseOver) as caught:
        session.post_update(1, 1)

    assert caught.value.fields == {"round": 1, "deadline": deadline}
    assert session.board.round_info(1).eligible == (0,)


@pytest.mark.anvil
def test_an_update_mined_after_the_deadline_is_refused_with_its_typed_error_on_a_node(
    anvil_backend: ChainBackend,
) -> None:
    # A node mines a transaction it cannot run, and says only that it reverted: its reason is
    # learnt by replaying it. Here the parent block is still inside the update phase and only the
    # transaction's own block is past it (the clock jumped between them, as after a pause).
    session = deploy(anvil_backend, n=4, m=2, tag="own-block")
    deadline = session.board.round_info(1).update_deadline
    anvil_backend.connect().provider.make_request("evm_setNextBlockTimestamp", [deadline + 5])  # type: ignore[arg-type]

    with pytest.raises(errors.BulletinUpdatePhaseOver) as caught:
        session.post_update(1, 1)

    assert caught.value.fields == {"round": 1, "deadline": deadline}
    assert caught.value.tx_hash is not None


def test_an_update_by_someone_outside_the_roster_is_refused(session: Session) -> None:
    stranger = make_accounts(1, tag="stranger")[0]
    update = digest("stranger")

    with pytest.raises(errors.BulletinUnknownAuthor) as caught:
        session.board.post_update(
            1, stranger.address, update, session.sign(stranger, 1, MessageKind.UPDATE, update)
        )

    assert caught.value.fields == {"author": stranger.address}


def test_the_server_cannot_post_an_update(session: Session) -> None:
    update = digest("server's own update")

    with pytest.raises(errors.BulletinUnknownAuthor):
        session.board.post_update(
            1, session.server.address, update, session.sign(session.server, 1, MessageKind.UPDATE, update)
        )


def test_a_second_update_of_the_same_author_in_a_round_is_refused(session: Session) -> None:
    first, second = digest("first"), digest("second")
    session.post_update(1, 0, first)

    with pytest.raises(errors.BulletinAlreadyPosted) as caught:
        session.post_update(1, 0, second)

    assert caught.value.fields == {
        "round": 1,
        "kind": int(MessageKind.UPDATE),
        "author": session.accounts[0].address,
    }
    assert session.board.digest_of(1, MessageKind.UPDATE, session.accounts[0].address) == first
    assert session.board.round_info(1).updates == 1


def test_two_authors_may_post_the_same_digest(session: Session) -> None:
    same = digest("same bytes")
    session.post_update(1, 0, same)
    session.post_update(1, 1, same)

    assert session.board.updates_of(1)[:2] == [same, same]


# ─────────────────────────── signatures ───────────────────────────


def test_a_signature_by_someone_else_is_refused(session: Session) -> None:
    victim, forger = session.accounts[0], session.accounts[1]
    update = digest("forged")
    forged = session.sign(forger, 1, MessageKind.UPDATE, update)

    with pytest.raises(errors.BulletinInvalidSignature) as caught:
        session.board.post_update(1, victim.address, update, forged)

    assert caught.value.fields == {"expected": victim.address, "signer": forger.address}
    assert session.board.digest_of(1, MessageKind.UPDATE, victim.address) is None


def test_a_digest_tampered_under_the_authors_signature_is_refused(session: Session) -> None:
    author = session.accounts[2]
    signature = session.sign(author, 1, MessageKind.UPDATE, digest("what the author sent"))
    tampered = digest("what the server changed it to")

    with pytest.raises(errors.BulletinInvalidSignature):
        session.board.post_update(1, author.address, tampered, signature)

    assert session.board.digest_of(1, MessageKind.UPDATE, author.address) is None


@pytest.mark.parametrize(("round_", "kind"), [(2, MessageKind.UPDATE), (1, MessageKind.EVALUATION)])
def test_a_signature_for_another_round_or_kind_is_refused(
    session: Session, round_: int, kind: MessageKind
) -> None:
    author = session.accounts[0]
    update = digest("replayed")

    with pytest.raises(errors.BulletinInvalidSignature):
        session.board.post_update(1, author.address, update, session.sign(author, round_, kind, update))


@pytest.mark.parametrize("signature", [b"", b"\x01" * 10, b"\x00" * 65], ids=["empty", "short", "zero"])
def test_malformed_signature_bytes_are_refused_as_signed_by_nobody(
    session: Session, signature: bytes
) -> None:
    with pytest.raises(errors.BulletinInvalidSignature) as caught:
        session.board.post_update(1, session.accounts[0].address, digest("x"), signature)

    assert caught.value.fields["signer"] == ZERO_ADDRESS


def test_a_signature_for_another_board_is_refused(session: Session, backend: ChainBackend) -> None:
    other = deploy(backend, n=4, m=2, tag="board")  # the same roster and terms, other addresses
    assert other.board.address != session.board.address
    update = digest("signed for the other board")
    signature = other.sign(other.accounts[0], 1, MessageKind.UPDATE, update)
    assert other.accounts[0].address == session.accounts[0].address

    with pytest.raises(errors.BulletinInvalidSignature):
        session.board.post_update(1, session.accounts[0].address, update, signature)
    other.board.post_update(1, other.accounts[0].address, update, signature)  # where it belongs


def test_a_signature_from_another_session_at_the_same_addresses_is_refused(backend: ChainBackend) -> None:
    server = server_account("replay-server")
    update = digest("signed in the first session")
    with rewound(backend):
        first = deploy(backend, n=3, m=1, tag="replay", server=server)
        signature = first.sign(first.accounts[0], 1, MessageKind.UPDATE, update)
        first.post_update(1, 0, update)  # valid where it was signed
    # The chain is back to before the first session: the same server deploys at the same addresses.
    second = deploy(backend, n=3, m=1, tag="replay", server=server, nonce=digest("another session nonce"))
    assert (second.board.address, second.consensus.address) == (first.board.address, first.consensus.address)
    assert second.board.digest_of(1, MessageKind.UPDATE, second.accounts[0].address) is None

    with pytest.raises(errors.BulletinInvalidSignature):
        second.board.post_update(1, second.accounts[0].address, update, signature)


def test_a_signature_for_another_chain_is_refused(session: Session) -> None:
    update = digest("another chain")
    elsewhere = SigningDomain(
        session.domain.chain_id + 1, session.board.address, session.consensus.address, session.terms.nonce
    )
    author = session.accounts[0]

    with pytest.raises(errors.BulletinInvalidSignature):
        session.board.post_update(
            1, author.address, update, elsewhere.sign(author, 1, MessageKind.UPDATE, update)
        )


# ─────────────────────────── constructor ───────────────────────────


def _settings(session: Session, **changes: object) -> DeploySettings:
    fields: dict[str, object] = {
        "consensus": session.consensus.address,
        "nonce": session.terms.nonce,
        "phases": PHASES,
        "initial_model": session.terms.initial_model,
        "update_format": session.terms.update_format,
    }
    fields.update(changes)
    return DeploySettings(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("problem", "position"),
    [("empty", 0), ("duplicate", 2), ("server", 1), ("zero", 1), ("too-many", 257)],
)
def test_an_invalid_participant_list_is_refused_at_deployment(
    session: Session, problem: str, position: int
) -> None:
    a, b = (acct.address for acct in make_accounts(2))
    participants = {
        "empty": [],
        "duplicate": [a, b, a],
        "server": [a, session.server.address],
        "zero": [a, ZERO_ADDRESS],
        "too-many": [acct.address for acct in make_accounts(257, "crowd")],
    }[problem]

    with pytest.raises(errors.BulletinInvalidParticipants) as caught:
        BulletinBoardClient.deploy(
            session.w3, server=session.server.address, participants=participants, settings=_settings(session)
        )

    assert caught.value.fields == {"position": position}


@pytest.mark.parametrize(
    "change",
    [
        {"consensus": ZERO_ADDRESS},
        {"phases": Phases(0, 60, 60, 60)},
        {"phases": Phases(60, 0, 60, 60)},
        {"phases": Phases(60, 60, 0, 60)},
    ],
    ids=["no-consensus", "no-update-phase", "no-ballot-phase", "no-model-phase"],
)
def test_invalid_settings_are_refused_at_deployment(session: Session, change: dict[str, object]) -> None:
    with pytest.raises(errors.BulletinInvalidSettings):
        BulletinBoardClient.deploy(
            session.w3,
            server=session.server.address,
            participants=[a.address for a in session.accounts],
            settings=_settings(session, **change),
        )


# ─────────────────────────── accusations ───────────────────────────


def _delivery(
    session: Session, round_: int, kind: MessageKind, digests: list[bytes], *, signer=None
) -> Delivery:
    """What the server says it handed participant 0: ``kind`` messages by everybody else."""
    authors = (
        [session.server.address] if kind == MessageKind.MODEL else [a.address for a in session.accounts[1:]]
    )
    return Delivery.sign(
        signer or session.server, session.domain, round_, kind, session.accounts[0].address, authors, digests
    )


def _accuse(
    session: Session, delivery: Delivery, position: int, *, client: BulletinBoardClient | None = None
):
    client = client or session.own_clients(session.accounts[0])[0]
    return client.accuse_delivery(
        delivery.round,
        delivery.kind,
        delivery.recipient,
        delivery.authors,
        delivery.digests,
        position,
        delivery.signature,
    )


def _recorded_updates(session: Session) -> list[bytes]:
    return [session.update_digest(1, i) for i in range(1, session.n)]


def test_an_update_delivery_is_never_upheld_updates_are_revealed_on_the_board(session: Session) -> None:
    # The server delivers no updates any more; even a server-signed statement of one proves nothing.
    session.post_updates(1, [0, 1, 2])  # participant 3 posts nothing
    session.pass_update_phase(1)
    delivered = [*_recorded_updates(session)[:2], digest("an update participant 3 never posted")]
    delivered[0] = digest("what the server handed out instead")
    delivery = _delivery(session, 1, MessageKind.UPDATE, delivered)

    for position in range(len(delivered)):
        with pytest.raises(errors.BulletinAccusationRefuted) as caught:
            _accuse(session, delivery, position)
        assert caught.value.fields == {"round": 1, "offence": int(Offence.DELIVERY_MISMATCH)}
    assert session.board.caught_count() == 0


def test_a_delivered_model_that_differs_from_the_board_is_upheld(session: Session) -> None:
    _tally_round_one(session)
    wrong = _delivery(session, 1, MessageKind.MODEL, [digest("not the posted model")])

    with pytest.raises(errors.BulletinAccusationRefuted) as caught:
        _accuse(session, wrong, 0)  # nothing on the board yet to differ from
    assert caught.value.fields["offence"] == int(Offence.DELIVERY_MISMATCH)
    session.post_model(1)
    receipt = _accuse(session, wrong, 0)

    assert session.accusations() == [
        (1, session.accounts[0].address, Offence.DELIVERY_MISMATCH, receipt.tx_hash)
    ]
    event = session.board.contract.events.ServerCaught().process_receipt(
        session.w3.eth.get_transaction_receipt(receipt.tx_hash)  # type: ignore[arg-type]
    )[0]["args"]
    assert bytes(event["digest"]) == digest("not the posted model")


def test_an_honest_delivery_is_refuted(session: Session) -> None:
    session.post_updates(1)
    honest = _delivery(session, 1, MessageKind.UPDATE, _recorded_updates(session))

    for position in range(len(honest.authors)):
        with pytest.raises(errors.BulletinAccusationRefuted) as caught:
            _accuse(session, honest, position)
        assert caught.value.fields == {"round": 1, "offence": int(Offence.DELIVERY_MISMATCH)}
    assert session.board.caught_count() == 0
    assert session.accusations() == []


def test_an_honest_model_delivery_is_refuted(session: Session) -> None:
    _tally_round_one(session)
    session.post_model(1)

    with pytest.raises(errors.BulletinAccusationRefuted):
        _accuse(session, _delivery(session, 1, MessageKind.MODEL, [session.model_digest(1)]), 0)
    with pytest.raises(errors.BulletinAccusationRefuted):  # round 0: the initial model
        _accuse(session, _delivery(session, 0, MessageKind.MODEL, [session.terms.initial_model]), 0)


def test_a_delivery_of_evaluations_is_never_upheld_on_the_board(session: Session) -> None:
    delivery = _delivery(session, 1, MessageKind.EVALUATION, [digest("e1"), digest("e2"), digest("e3")])

    with pytest.raises(errors.BulletinAccusationRefuted):
        _accuse(session, delivery, 0)


def test_a_delivery_statement_not_signed_by_the_server_is_refused(session: Session) -> None:
    session.post_updates(1)
    delivered = _recorded_updates(session)
    delivered[0] = digest("fabricated by the accuser")
    fabricated = _delivery(session, 1, MessageKind.UPDATE, delivered, signer=session.accounts[0])

    with pytest.raises(errors.BulletinInvalidSignature) as caught:
        _accuse(session, fabricated, 0)

    assert caught.value.fields == {"expected": session.server.address, "signer": session.accounts[0].address}
    assert session.board.caught_count() == 0


def test_an_accusation_that_alters_the_servers_statement_is_refused(session: Session) -> None:
    session.post_updates(1)
    honest = _delivery(session, 1, MessageKind.UPDATE, _recorded_updates(session))
    altered = Delivery(
        honest.round,
        honest.kind,
        honest.recipient,
        honest.authors,
        (digest("altered after signing"), *honest.digests[1:]),
        honest.signature,
    )

    with pytest.raises(errors.BulletinInvalidSignature):
        _accuse(session, altered, 0)


@pytest.mark.parametrize(
    ("authors", "digests", "position"), [(3, 2, 0), (3, 3, 3)], ids=["lengths", "position"]
)
def test_an_accusation_with_lists_that_do_not_fit_is_refused(
    session: Session, authors: int, digests: int, position: int
) -> None:
    own_board, _ = session.own_clients(session.accounts[0])

    with pytest.raises(errors.BulletinWrongLength) as caught:
        own_board.accuse_delivery(
            1,
            MessageKind.UPDATE,
            session.accounts[0].address,
            [a.address for a in session.accounts[1 : 1 + authors]],
            [digest(str(i)) for i in range(digests)],
            position,
            b"\x00" * 65,
        )

    assert caught.value.fields == ({"a": 3, "b": 2} if digests == 2 else {"a": 3, "b": 3})


def test_a_missing_model_is_upheld_only_after_the_model_deadline(session: Session) -> None:
    _tally_round_one(session)
    own_board, _ = session.own_clients(session.accounts[0])

    with pytest.raises(errors.BulletinAccusationRefuted) as caught:
        own_board.accuse_missing_model(1)
    assert caught.value.fields == {"round": 1, "offence": int(Offence.MODEL_NOT_POSTED)}
    session.pass_model_phase(1)
    receipt = own_board.accuse_missing_model(1)

    assert session.accusations() == [
        (1, session.accounts[0].address, Offence.MODEL_NOT_POSTED, receipt.tx_hash)
    ]
    assert session.board.caught_count() == 1
    session.post_model(1)  # late, but the round order still holds
    assert session.board.current_round() == 2


@pytest.mark.parametrize("round_", [0, 1, 3], ids=["initial-model", "posted", "not-open"])
def test_a_missing_model_accusation_is_refuted_for_a_posted_model_or_a_round_not_open(
    session: Session, round_: int
) -> None:
    _tally_round_one(session)
    session.post_model(1)
    session.pass_model_phase(1)  # round 1's deadline is over: only the model being there refutes it

    with pytest.raises(errors.BulletinAccusationRefuted):
        session.board.accuse_missing_model(round_)
    assert session.board.caught_count() == 0
