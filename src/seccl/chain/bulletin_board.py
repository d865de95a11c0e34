"""Typed client of the BulletinBoard contract (the TBB): deploy, open rounds, post, look up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3

from seccl.chain.artifacts import load_artifact
from seccl.chain.errors import ChainError
from seccl.chain.signing import sign_hash, signed_hash
from seccl.chain.transactions import TxReceipt, call, event_in_transaction, transact

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_DIGEST = b"\x00" * 32

# Gas limits, generous for the worst case the contract allows; bench/gas.py prints real use.
GAS_OPEN_ROUND = 100_000
GAS_POST = 200_000


def gas_for_deploy(n: int) -> int:
    """A gas limit for deploying a board of ``n`` participants (two storage slots each)."""
    return 1_500_000 + 60_000 * n


class MessageKind(IntEnum):
    """The three SecCL message kinds, numbered as the contract's ``Kind`` enum."""

    UPDATE = 0
    EVALUATION = 1
    MODEL = 2


@dataclass(frozen=True)
class BoardRecord:
    """A digest the bulletin board holds, with its round, kind and author."""

    round: int
    kind: MessageKind
    author: str
    digest: bytes


class BulletinBoardClient:
    """A connection to one deployed BulletinBoard.

    ``sender`` is the account writes are sent from (the server); a participant's client has none
    and only reads, over its own connection.
    """

    def __init__(self, w3: Web3, address: str, *, sender: str | None = None):
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.sender = sender
        self.contract = w3.eth.contract(address=self.address, abi=load_artifact("BulletinBoard").abi)

    @classmethod
    def deploy(
        cls, w3: Web3, *, server: str, participants: Sequence[str]
    ) -> tuple[BulletinBoardClient, TxReceipt]:
        """Deploy a board with ``server`` relaying for ``participants`` (in index order)."""
        artifact = load_artifact("BulletinBoard")
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        constructor = factory.constructor([to_checksum_address(p) for p in participants])
        receipt, raw = transact(w3, constructor, sender=server, gas=gas_for_deploy(len(participants)))
        return cls(w3, str(raw["contractAddress"]), sender=server), receipt

    def for_reader(self, w3: Web3) -> BulletinBoardClient:
        """The same board seen through another party's own connection, read-only."""
        return BulletinBoardClient(w3, self.address)

    # ─────────────── signing ───────────────

    @cached_property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def signed_hash(self, round_: int, kind: MessageKind, digest: bytes) -> bytes:
        """The hash ``author`` signs to post ``digest`` here (see ``SecclSigning``)."""
        return signed_hash(self.chain_id, self.address, round_, int(kind), digest)

    def sign(self, account: LocalAccount, round_: int, kind: MessageKind, digest: bytes) -> bytes:
        """``account``'s signature that authorises posting ``digest`` here."""
        return sign_hash(account, self.signed_hash(round_, kind, digest))

    # ─────────────── writes (server) ───────────────

    def open_round(self, round_: int) -> TxReceipt:
        return transact(
            self.w3,
            self.contract.functions.openRound(round_),
            sender=self._sender(),
            gas=GAS_OPEN_ROUND,
        )[0]

    def post(self, round_: int, kind: MessageKind, author: str, digest: bytes, signature: bytes) -> TxReceipt:
        """Record ``digest`` as ``author``'s ``kind`` message of ``round_``; returns the Tx-ID."""
        function = self.contract.functions.post(
            round_, int(kind), to_checksum_address(author), digest, signature
        )
        return transact(self.w3, function, sender=self._sender(), gas=GAS_POST)[0]

    # ─────────────── reads (anyone) ───────────────

    def server(self) -> str:
        return str(call(self.contract.functions.server()))

    def current_round(self) -> int:
        return int(call(self.contract.functions.currentRound()))

    def participants(self) -> list[str]:
        return [str(p) for p in call(self.contract.functions.participants())]

    def participant_index(self, account: str) -> int | None:
        registered, index = call(self.contract.functions.participantIndex(to_checksum_address(account)))
        return int(index) if registered else None

    def record_of(self, digest: bytes) -> BoardRecord | None:
        """What the board holds for ``digest``, or None."""
        round_, kind, author = call(self.contract.functions.recordOf(digest))
        if author == ZERO_ADDRESS:
            return None
        return BoardRecord(int(round_), MessageKind(kind), str(author), bytes(digest))

    def digest_of(self, round_: int, kind: MessageKind, author: str) -> bytes | None:
        """The digest ``author`` posted as its ``kind`` message of ``round_``, or None."""
        digest = bytes(call(self.contract.functions.digestOf(round_, int(kind), to_checksum_address(author))))
        return None if digest == ZERO_DIGEST else digest

    def record_in_transaction(self, tx_hash: str) -> BoardRecord | None:
        """The record that transaction ``tx_hash`` (a Tx-ID) posted on this board, or None.

        This is how a participant checks a Tx-ID handed to it by the server: on its own
        connection, the transaction must exist, be this board's, and have posted a record.
        """
        posted = event_in_transaction(self.w3, tx_hash, self.contract.events.MessagePosted)
        if posted is None:
            return None
        return BoardRecord(
            int(posted["round"]),
            MessageKind(posted["kind"]),
            str(posted["author"]),
            bytes(posted["digest"]),
        )

    def records(self, from_block: int = 0) -> list[tuple[BoardRecord, str]]:
        """Every record on the board with its Tx-ID, in chain order (for audits)."""
        logs = self.contract.events.MessagePosted().get_logs(from_block=from_block)
        return [
            (
                BoardRecord(
                    int(log["args"]["round"]),
                    MessageKind(log["args"]["kind"]),
                    str(log["args"]["author"]),
                    bytes(log["args"]["digest"]),
                ),
                "0x" + bytes(log["transactionHash"]).hex(),
            )
            for log in logs
        ]

    def _sender(self) -> str:
        if self.sender is None:
            raise ChainError("this bulletin board client is read-only: it has no sender account")
        return self.sender
