"""Opening a session: the terms every party agrees to, the two contracts deployed for them, and
the facts (:class:`SessionInfo`) each party checks the chain against; the simulation and a
deployment open sessions with this one function. The simulation also funds the parties first
(:func:`open_session`), or takes over a session already open (:func:`rejoin_session`)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3

from seccl.chain.accounts import fund, signing_connection
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient, Phases, UpdateFormat
from seccl.chain.consensus import ElectionClient
from seccl.chain.session import CONSENSUS_CLIENTS, SessionTerms, deploy_session
from seccl.chain.transactions import TxReceipt
from seccl.election import candidate_count
from seccl.election.gram_gate import assumed_attackers
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import update_size
from seccl.roles.participant_state import initial_model_digest
from seccl.roles.settings import LearningSettings, SessionInfo


def establish_session(
    w3: Web3,
    server: LocalAccount,
    participants: Sequence[str],
    *,
    seed: int,
    candidate_fraction: float,
    settings: LearningSettings,
    phases: Phases,
    max_abs_value: float,
) -> tuple[SessionInfo, BulletinBoardClient, ElectionClient, list[TxReceipt]]:
    """Deploy the board and the consensus contract from ``server`` (``w3`` signs as it) for the
    roster ``participants``; returns the session's facts, the two clients and the deployments."""
    initial = get_flat_params(build_model(seed))
    update_format = UpdateFormat(
        len(initial), update_size(settings.share_fraction, len(initial)), max_abs_value
    )
    terms = SessionTerms(
        server=server.address,
        participants=tuple(participants),
        candidates=candidate_count(candidate_fraction, len(participants)),
        # Fresh randomness binds every signature to this session: nothing secret comes from the seed.
        nonce=secrets.token_bytes(32),
        phases=phases,
        initial_model=initial_model_digest(seed, server.address),
        update_format=update_format,
        election=settings.election,
        assumed_attackers=(
            assumed_attackers(len(participants), settings.assumed_fraction)
            if settings.election == "gram-gate"
            else 0
        ),
    )
    board, consensus, deployment = deploy_session(w3, terms)
    session = SessionInfo(
        chain_id=int(w3.eth.chain_id),
        board=board.address,
        consensus=consensus.address,
        server=server.address,
        participants=terms.participants,
        dimension=update_format.dimension,
        candidates=terms.candidates,
        nonce=terms.nonce,
        phases=terms.phases,
        update_size=update_format.update_size,
        max_abs_value=max_abs_value,
        initial_model=terms.initial_model,
        election=terms.election,
        assumed_attackers=terms.assumed_attackers,
    )
    return session, board, consensus, deployment


@dataclass(frozen=True)
class OpenSession:
    """A session on the chain as its run knows it: its facts, the run's first block, and the
    transactions that deployed its contracts and funded its parties."""

    session: SessionInfo
    first_block: int
    deployment: list[TxReceipt]
    funding: list[TxReceipt]


def open_session(
    backend: ChainBackend,
    server: LocalAccount,
    participants: Sequence[LocalAccount],
    *,
    seed: int,
    candidate_fraction: float,
    settings: LearningSettings,
    phases: Phases,
    max_abs_value: float,
) -> tuple[OpenSession, BulletinBoardClient, ElectionClient]:
    """Fund every party from the backend's account, then :func:`establish_session` for them."""
    reader = backend.connect()
    first_block = int(reader.eth.block_number) + 1
    funding = [fund(backend, account.address) for account in (server, *participants)]
    w3 = signing_connection(backend, server)
    session, board, consensus, deployment = establish_session(
        w3,
        server,
        [a.address for a in participants],
        seed=seed,
        candidate_fraction=candidate_fraction,
        settings=settings,
        phases=phases,
        max_abs_value=max_abs_value,
    )
    return OpenSession(session, first_block, deployment, funding), board, consensus


def rejoin_session(
    backend: ChainBackend, server: LocalAccount, participants: Sequence[LocalAccount], opened: OpenSession
) -> tuple[BulletinBoardClient, ElectionClient]:
    """The server's clients of a session already open, whose keys must be the ones given."""
    session = opened.session
    if (session.server, session.participants) != (server.address, tuple(a.address for a in participants)):
        raise ValueError("the keys given are not the ones of the session being resumed")
    w3 = signing_connection(backend, server)
    board = BulletinBoardClient(w3, session.board, sender=server.address)
    consensus = CONSENSUS_CLIENTS[session.election](w3, session.consensus, sender=server.address)
    return board, consensus
