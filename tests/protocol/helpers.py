"""Test helpers of the protocol tests: a bare session (both contracts, no learning) on a chain."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from seccl.chain.accounts import fund, new_account, signing_connection
from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient, Phases, UpdateFormat
from seccl.chain.consensus import ConsensusClient
from seccl.chain.session import SessionTerms
from seccl.chain.session import deploy_session as deploy_contracts
from seccl.chain.signing import SigningDomain


@dataclass(frozen=True)
class BareSession:
    """A deployed board and consensus contract for ``participants``, written from the server."""

    server: LocalAccount
    board: BulletinBoardClient
    consensus: ConsensusClient
    domain: SigningDomain


def deploy_session(
    backend: ChainBackend, participants: Sequence[LocalAccount], *, candidates: int = 1
) -> BareSession:
    """Deploy a fresh session (random nonce) from a new, funded server key; round 1 is open."""
    server = new_account()
    fund(backend, server.address)
    w3 = signing_connection(backend, server)
    terms = SessionTerms(
        server=server.address,
        participants=tuple(a.address for a in participants),
        candidates=candidates,
        nonce=secrets.token_bytes(32),
        phases=Phases(update=3600, ballot=3600, model=3600, reveal=3600),
        initial_model=hashlib.sha256(b"theta-0").digest(),
        update_format=UpdateFormat(dimension=16, update_size=3, max_abs_value=10.0),
    )
    board, consensus, _ = deploy_contracts(w3, terms)
    domain = SigningDomain(int(w3.eth.chain_id), board.address, consensus.address, terms.nonce)
    return BareSession(server, board, consensus, domain)
