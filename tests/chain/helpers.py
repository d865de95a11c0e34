"""Test helpers: deploy a session and sign ballots, through the real clients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3

from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind
from seccl.chain.consensus import ConsensusClient
from seccl.protocol.messages import EvaluationMessage
from tests.conftest import make_accounts

FAR_FUTURE = 2**62


@dataclass
class Session:
    w3: Web3
    server: str
    accounts: list[LocalAccount]
    board: BulletinBoardClient
    consensus: ConsensusClient

    def sign_scores(
        self, round_: int, voter: LocalAccount, scores: Sequence[int]
    ) -> tuple[bytes, bytes]:
        """The digest of ``voter``'s evaluation message and its signature of it."""
        digest = EvaluationMessage(round_, voter.address, tuple(scores)).digest()
        return digest, self.board.sign(voter, round_, MessageKind.EVALUATION, digest)

    def vote(self, round_: int, voter: LocalAccount, scores: Sequence[int], **kwargs: object):
        _, signature = self.sign_scores(round_, voter, scores)
        return self.consensus.submit_scores(round_, voter.address, scores, signature, **kwargs)


def deploy_session(backend: ChainBackend, n: int, m: int, tag: str = "participant") -> Session:
    w3 = backend.connect()
    server = backend.server_account()
    accounts = make_accounts(n, tag)
    board, _ = BulletinBoardClient.deploy(
        w3, server=server, participants=[a.address for a in accounts]
    )
    consensus, _ = ConsensusClient.deploy(w3, server=server, board=board.address, candidates=m)
    return Session(w3, server, accounts, board, consensus)
