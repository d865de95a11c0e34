"""Before taking part, a participant checks the session on the chain itself: look-alike contracts,
a rigged initial model or other deadlines are refused, and nothing signed for one session counts
in another, even at the same addresses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from seccl.chain.accounts import fund, new_account, signing_connection
from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import MessageKind, Phases, UpdateFormat
from seccl.chain.errors import BulletinInvalidSignature
from seccl.chain.session import SessionMismatchError, SessionTerms, deploy_session
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import select_top_fraction, update_size
from seccl.protocol.envelope import open_message, sign_message
from seccl.protocol.errors import InvalidSignatureError
from seccl.protocol.messages import ModelMessage, UpdateMessage
from seccl.protocol.session import SessionInfo
from seccl.roles.participant import Participant
from seccl.roles.participant_state import initial_model_digest
from seccl.roles.settings import LearningSettings
from tests.sessions import N

SEED = 0
DIMENSION = len(get_flat_params(build_model(SEED)))
PHASES = Phases(update=3600, ballot=3600, model=3600, reveal=3600)


def agreed_terms(server: str, participants: tuple[str, ...], **changes: object) -> SessionTerms:
    terms = SessionTerms(
        server=server,
        participants=participants,
        candidates=2,
        nonce=b"\x01" * 32,
        phases=PHASES,
        initial_model=initial_model_digest(SEED, server),
        update_format=UpdateFormat(DIMENSION, update_size(0.1, DIMENSION), 10.0),
    )
    return replace(terms, **changes)


def session_info(w3, board: str, consensus: str, terms: SessionTerms) -> SessionInfo:
    dimension = len(get_flat_params(build_model(SEED)))
    return SessionInfo(
        chain_id=int(w3.eth.chain_id),
        board=board,
        consensus=consensus,
        server=terms.server,
        participants=terms.participants,
        dimension=dimension,
        candidates=terms.candidates,
        nonce=terms.nonce,
        phases=terms.phases,
        update_size=update_size(0.1, dimension),
        max_abs_value=10.0,
        initial_model=terms.initial_model,
    )


@pytest.fixture
def chain():
    backend = EmbeddedChain()
    server = new_account()
    accounts = [new_account() for _ in range(N)]
    for account in (server, *accounts):
        fund(backend, account.address)
    return backend, server, accounts


def join(chain, data, deployed: SessionTerms, agreed: SessionTerms) -> Participant:
    """Deploy ``deployed``, then have participant 0 join a session announced as ``agreed``."""
    backend, server, accounts = chain
    w3 = signing_connection(backend, server)
    board, consensus, _ = deploy_session(w3, deployed)
    info = session_info(w3, board.address, consensus.address, agreed)
    parts, _ = data
    return Participant(0, accounts[0], parts[0], info, LearningSettings(), backend, seed=SEED)


def roster(chain) -> tuple[str, ...]:
    return tuple(a.address for a in chain[2])


def test_a_participant_joins_the_session_it_agreed_to(chain, data) -> None:
    terms = agreed_terms(chain[1].address, roster(chain))

    participant = join(chain, data, terms, terms)

    assert participant.board.current_round() == 1


@pytest.mark.parametrize(
    "what, change",
    [
        ("roster", lambda t: replace(t, participants=tuple(reversed(t.participants)))),
        (
            "initial model",
            lambda t: replace(t, initial_model=ModelMessage(0, t.server, np.zeros(10, np.float32)).digest()),
        ),
        (
            "phases",
            lambda t: replace(t, phases=Phases(update=2**63, ballot=2**63, model=2**63, reveal=2**63)),
        ),
        ("nonce", lambda t: replace(t, nonce=b"\x03" * 32)),
        ("update format", lambda t: replace(t, update_format=replace(t.update_format, max_abs_value=1e30))),
        ("candidates", lambda t: replace(t, candidates=3)),
    ],
)
def test_a_session_deployed_otherwise_than_agreed_is_refused(chain, data, what: str, change) -> None:
    agreed = agreed_terms(chain[1].address, roster(chain))

    with pytest.raises(SessionMismatchError):
        join(chain, data, change(agreed), agreed)


def test_a_rigged_initial_model_is_refused_even_when_the_announcement_names_it(chain, data) -> None:
    rigged = ModelMessage(0, chain[1].address, np.ones(10, np.float32)).digest()
    terms = agreed_terms(chain[1].address, roster(chain), initial_model=rigged)

    # The participant derives θ_0 from the public seed and architecture, not from the announcement.
    with pytest.raises(SessionMismatchError, match="initial model"):
        join(chain, data, terms, terms)


def test_look_alike_contracts_at_the_announced_addresses_are_refused(chain, data) -> None:
    backend, server, _ = chain
    terms = agreed_terms(server.address, roster(chain))
    w3 = signing_connection(backend, server)
    board, consensus, _ = deploy_session(w3, terms)
    parts, _ = data
    # The board's address announced as the consensus contract, and vice versa: the code differs.
    swapped = session_info(w3, consensus.address, board.address, terms)

    with pytest.raises(SessionMismatchError, match="code"):
        Participant(0, chain[2][0], parts[0], swapped, LearningSettings(), backend, seed=SEED)


def test_a_signed_update_from_one_session_is_refused_in_another_at_the_same_addresses(data) -> None:
    server, author = new_account(), new_account()
    sessions = []
    for nonce in (b"\x0a" * 32, b"\x0b" * 32):
        backend = EmbeddedChain()
        for account in (server, author):
            fund(backend, account.address)
        others = tuple(new_account().address for _ in range(N - 1))
        terms = agreed_terms(server.address, (author.address, *others), nonce=nonce)
        w3 = signing_connection(backend, server)
        board, consensus, _ = deploy_session(w3, terms)
        sessions.append((w3, board, session_info(w3, board.address, consensus.address, terms)))
    (_, board_a, info_a), (_, board_b, info_b) = sessions
    assert board_a.address == board_b.address  # same deployer key and nonce: same addresses
    delta = np.random.default_rng(0).normal(0, 0.01, info_a.dimension).astype(np.float32)
    signed = sign_message(
        UpdateMessage(1, author.address, select_top_fraction(delta, 0.1)), author, info_a.domain
    )

    with pytest.raises(BulletinInvalidSignature):
        board_b.post_update(1, author.address, signed.digest(), signed.signature)
    with pytest.raises(InvalidSignatureError):
        open_message(signed, info_b.domain, **info_b.bounds())
    board_a.post_update(1, author.address, signed.digest(), signed.signature)
    assert board_a.digest_of(1, MessageKind.UPDATE, author.address) == signed.digest()
