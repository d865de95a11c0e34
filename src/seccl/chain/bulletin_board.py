"""Typed client of the BulletinBoard contract (the TBB): post, accuse, and read a session's record."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from eth_utils import to_checksum_address
from web3 import Web3

from seccl.chain.artifacts import load_artifact
from seccl.chain.errors import ChainError
from seccl.chain.transactions import TxReceipt, call, event_in_transaction, transact

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_DIGEST = b"\x00" * 32

# Gas limits, generous for the worst case the contract allows; bench/gas.py prints real use.
GAS_POST = 150_000
GAS_ACCUSE = 150_000


def gas_for_message(size: int) -> int:
    """A gas limit for a call that carries a ``size``-byte update message (a reveal, or a proof
    of invalidity): the checks and SHA-256 (12 gas a word), plus the calldata, whose floor since
    Prague (EIP-7623, anvil's default hardfork) is 40 gas a non-zero byte (16 under Cancun)."""
    return 250_000 + 40 * size + 12 * (size // 32 + 1)


def gas_for_deploy(n: int) -> int:
    """A gas limit for deploying a board of ``n`` participants (two storage slots each)."""
    return 3_000_000 + 60_000 * n


class MessageKind(IntEnum):
    """The three SecCL message kinds, numbered as the contract's ``Kind`` enum."""

    UPDATE = 0
    EVALUATION = 1
    MODEL = 2


class Offence(IntEnum):
    """What an upheld accusation proved, numbered as the contract's ``Offence`` enum."""

    DELIVERY_MISMATCH = 0
    MODEL_NOT_POSTED = 1


@dataclass(frozen=True)
class BoardRecord:
    """A digest the bulletin board holds, with its round, kind and author."""

    round: int
    kind: MessageKind
    author: str
    digest: bytes


@dataclass(frozen=True)
class RevealedUpdate:
    """An update's bytes as revealed on the board: its author's committed ``digest`` and the
    ``message`` the revealing transaction ``tx_hash`` carried."""

    round: int
    author: str
    digest: bytes
    message: bytes
    tx_hash: str


@dataclass(frozen=True)
class Phases:
    """How long each phase of a round lasts, in seconds of chain time (fixed at deployment):
    commitments (``update``), then reveals, ballots and the model, in that order on the chain."""

    update: int
    ballot: int
    model: int
    reveal: int


@dataclass(frozen=True)
class RoundInfo:
    """One round's schedule (unix times) and progress; ``opened_at`` is 0 for a round not yet open."""

    opened_at: int
    update_deadline: int
    reveal_deadline: int
    ballot_deadline: int
    model_deadline: int
    updates: int
    model_posted: bool
    update_bitmap: int
    reveal_bitmap: int = 0
    invalid_bitmap: int = 0

    def has_update(self, index: int) -> bool:
        """Whether participant ``index`` committed an update this round."""
        return bool(self.update_bitmap >> index & 1)

    def has_revealed(self, index: int) -> bool:
        return bool(self.reveal_bitmap >> index & 1)

    def is_invalid(self, index: int) -> bool:
        return bool(self.invalid_bitmap >> index & 1)

    @property
    def eligible(self) -> tuple[int, ...]:
        """The participants whose update of the round is revealed and not proven invalid."""
        bitmap = self.reveal_bitmap & ~self.invalid_bitmap
        return tuple(i for i in range(bitmap.bit_length()) if bitmap >> i & 1)

    def commitments_closed(self, n: int, now: int) -> bool:
        """Whether the update phase is over: every participant committed, or its deadline passed."""
        return self.opened_at != 0 and (self.updates == n or now > self.update_deadline)

    def reveals_closed(self, n: int, now: int) -> bool:
        """Whether the reveal phase is over (so ballots are open, until their deadline): every
        committed update is revealed once the commitments closed, or the reveal deadline passed."""
        if self.opened_at == 0:
            return False
        return (self.commitments_closed(n, now) and self.reveal_bitmap == self.update_bitmap) or (
            now > self.reveal_deadline
        )


@dataclass(frozen=True)
class UpdateFormat:
    """What every update of a session must be, fixed on the board at deployment: a
    ``dimension``-parameter model, exactly ``update_size`` coordinates, values of magnitude at most
    ``max_abs_value`` (a float32)."""

    dimension: int
    update_size: int
    max_abs_value: float

    @property
    def value_bound_bits(self) -> int:
        """The float32 bits of the bound, as the board compares a value's magnitude with it."""
        return int(np.array([self.max_abs_value], dtype="<f4").view("<u4")[0])


@dataclass(frozen=True)
class DeploySettings:
    """The constructor's ``Settings``: what a session fixes for good at deployment."""

    consensus: str
    nonce: bytes
    phases: Phases
    initial_model: bytes
    update_format: UpdateFormat

    def as_tuple(self) -> tuple:
        p, f = self.phases, self.update_format
        return (
            to_checksum_address(self.consensus),
            self.nonce,
            p.update,
            p.reveal,
            p.ballot,
            p.model,
            self.initial_model,
            f.dimension,
            f.update_size,
            f.value_bound_bits,
        )


class BulletinBoardClient:
    """A connection to one deployed BulletinBoard, writing (when it writes) from ``sender``.

    Anyone may relay a signed post, so a participant's client writes from the participant's own
    account over its own connection, and the server's from the server's.
    """

    def __init__(self, w3: Web3, address: str, *, sender: str | None = None):
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.sender = sender
        self.contract = w3.eth.contract(address=self.address, abi=load_artifact("BulletinBoard").abi)

    @classmethod
    def deploy(
        cls, w3: Web3, *, server: str, participants: Sequence[str], settings: DeploySettings
    ) -> tuple[BulletinBoardClient, TxReceipt]:
        """Deploy a board with ``server`` as its server for ``participants`` (in index order)."""
        artifact = load_artifact("BulletinBoard")
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        constructor = factory.constructor([to_checksum_address(p) for p in participants], settings.as_tuple())
        receipt, raw = transact(w3, constructor, sender=server, gas=gas_for_deploy(len(participants)))
        return cls(w3, str(raw["contractAddress"]), sender=server), receipt

    def for_reader(self, w3: Web3, sender: str | None = None) -> BulletinBoardClient:
        """The same board seen through another party's own connection."""
        return BulletinBoardClient(w3, self.address, sender=sender)

    # ─────────────── writes (anyone holding the signature) ───────────────

    def post_update(self, round_: int, author: str, digest: bytes, signature: bytes) -> TxReceipt:
        """Record ``digest`` as ``author``'s update of ``round_``; returns the Tx-ID."""
        function = self.contract.functions.postUpdate(round_, to_checksum_address(author), digest, signature)
        return transact(self.w3, function, sender=self._sender(), gas=GAS_POST)[0]

    def reveal_update(self, round_: int, author: str, message: bytes) -> TxReceipt:
        """Reveal the bytes of ``author``'s committed update of ``round_`` on the board."""
        function = self.contract.functions.revealUpdate(round_, to_checksum_address(author), message)
        return transact(self.w3, function, sender=self._sender(), gas=gas_for_message(len(message)))[0]

    def prove_invalid(self, round_: int, author: str, message: bytes, position: int) -> TxReceipt:
        """Prove ``author``'s revealed update of ``round_`` (``message``) invalid at entry ``position``."""
        function = self.contract.functions.proveInvalid(
            round_, to_checksum_address(author), message, position
        )
        return transact(self.w3, function, sender=self._sender(), gas=gas_for_message(len(message)))[0]

    def post_model(self, round_: int, digest: bytes, signature: bytes) -> TxReceipt:
        """Record the server-signed model ``digest`` of ``round_`` and open the next round."""
        function = self.contract.functions.postModel(round_, digest, signature)
        return transact(self.w3, function, sender=self._sender(), gas=GAS_POST)[0]

    def accuse_delivery(
        self,
        round_: int,
        kind: MessageKind,
        recipient: str,
        authors: Sequence[str],
        digests: Sequence[bytes],
        position: int,
        signature: bytes,
    ) -> TxReceipt:
        """Prove on-chain that the server's signed delivery differs from the board."""
        function = self.contract.functions.accuseDelivery(
            round_,
            int(kind),
            to_checksum_address(recipient),
            [to_checksum_address(a) for a in authors],
            list(digests),
            position,
            signature,
        )
        return transact(self.w3, function, sender=self._sender(), gas=GAS_ACCUSE + 2_000 * len(authors))[0]

    def accuse_missing_model(self, round_: int) -> TxReceipt:
        """Prove on-chain that the model of ``round_`` was not posted by its deadline."""
        function = self.contract.functions.accuseMissingModel(round_)
        return transact(self.w3, function, sender=self._sender(), gas=GAS_ACCUSE)[0]

    # ─────────────── reads (anyone) ───────────────

    def server(self) -> str:
        return str(self._call(self.contract.functions.server()))

    def consensus(self) -> str:
        return str(self._call(self.contract.functions.consensus()))

    def nonce(self) -> bytes:
        return bytes(self._call(self.contract.functions.nonce()))

    def tie_seed_of(self, round_: int) -> bytes:
        """The round's tie seed: the XOR of its revealed updates' salts (final once reveals close)."""
        return bytes(self._call(self.contract.functions.tieSeedOf(round_)))

    def phases(self) -> Phases:
        update, reveal, ballot, model = (int(v) for v in self._call(self.contract.functions.phases()))
        return Phases(update=update, ballot=ballot, model=model, reveal=reveal)

    def update_format(self) -> UpdateFormat:
        dimension, size, bits = (int(v) for v in self._call(self.contract.functions.updateFormat()))
        bound = float(np.array([bits], dtype="<u4").view("<f4")[0])
        return UpdateFormat(dimension, size, bound)

    def current_round(self) -> int:
        return int(self._call(self.contract.functions.currentRound()))

    def participants(self) -> list[str]:
        return [str(p) for p in self._call(self.contract.functions.participants())]

    def participant_index(self, account: str) -> int | None:
        registered, index = self._call(self.contract.functions.participantIndex(to_checksum_address(account)))
        return int(index) if registered else None

    def digest_of(self, round_: int, kind: MessageKind, author: str) -> bytes | None:
        """The digest ``author`` posted as its ``kind`` message of ``round_``, or None."""
        function = self.contract.functions.digestOf(round_, int(kind), to_checksum_address(author))
        digest = bytes(self._call(function))
        return None if digest == ZERO_DIGEST else digest

    def updates_of(self, round_: int) -> list[bytes | None]:
        """Every participant's update digest of ``round_`` by index, None where none: one call."""
        return [
            None if bytes(d) == ZERO_DIGEST else bytes(d)
            for d in self._call(self.contract.functions.updatesOf(round_))
        ]

    def round_info(self, round_: int) -> RoundInfo:
        values = self._call(self.contract.functions.roundInfo(round_))
        opened, update_dl, reveal_dl, ballot_dl, model_dl, updates, posted, committed, revealed, invalid = (
            values
        )
        return RoundInfo(
            int(opened),
            int(update_dl),
            int(reveal_dl),
            int(ballot_dl),
            int(model_dl),
            int(updates),
            bool(posted),
            int(committed),
            int(revealed),
            int(invalid),
        )

    def caught_count(self) -> int:
        """How many accusations the chain has upheld against the server."""
        return int(self._call(self.contract.functions.caughtCount()))

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

    def records(self, from_block: int = 0, *, round_: int | None = None) -> list[tuple[BoardRecord, str]]:
        """Every record on the board (of one round, if given) with its Tx-ID, in chain order."""
        filters = {} if round_ is None else {"argument_filters": {"round": round_}}
        logs = self.contract.events.MessagePosted().get_logs(from_block=from_block, **filters)
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

    def revealed_updates(self, round_: int, from_block: int = 0) -> dict[str, RevealedUpdate]:
        """The revealed bytes of every update of ``round_``, by author, read from the chain alone:
        each :class:`UpdateRevealed` event names its transaction, whose calldata carries the bytes.

        Only a direct call of this board's ``revealUpdate`` whose bytes hash to the event's digest
        is taken. The board lets only the author reveal, so no one else can put an author's bytes
        where this reader does not find them; an author that reveals through a contract of its
        own (its bytes then not in the transaction's own calldata) hurts only itself.
        """
        logs = self.contract.events.UpdateRevealed().get_logs(
            from_block=from_block, argument_filters={"round": round_}
        )
        found: dict[str, RevealedUpdate] = {}
        for log in logs:
            author, digest = str(log["args"]["author"]), bytes(log["args"]["digest"])
            tx_hash = "0x" + bytes(log["transactionHash"]).hex()
            message = self._revealed_bytes(tx_hash, round_, author, digest)
            if message is not None:
                found[author] = RevealedUpdate(round_, author, digest, message, tx_hash)
        return found

    def _revealed_bytes(self, tx_hash: str, round_: int, author: str, digest: bytes) -> bytes | None:
        tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        if tx.get("to") is None or to_checksum_address(str(tx["to"])) != self.address:
            return None
        try:
            function, args = self.contract.decode_function_input(tx["input"])
        except ValueError:
            return None
        if function.fn_name != "revealUpdate":
            return None
        message = bytes(args["message"])
        if (int(args["round"]), str(args["author"])) != (round_, author):
            return None
        return message if hashlib.sha256(message).digest() == digest else None

    def invalidity_proofs(self, from_block: int = 0) -> list[tuple[int, str, int, str, str]]:
        """Every upheld proof of invalidity: (round, author, position, prover, Tx-ID)."""
        logs = self.contract.events.UpdateProvenInvalid().get_logs(from_block=from_block)
        return [
            (
                int(log["args"]["round"]),
                str(log["args"]["author"]),
                int(log["args"]["position"]),
                str(log["args"]["prover"]),
                "0x" + bytes(log["transactionHash"]).hex(),
            )
            for log in logs
        ]

    def accusations(self, from_block: int = 0) -> list[tuple[int, str, Offence, str]]:
        """Every upheld accusation: (round, accuser, offence, Tx-ID)."""
        logs = self.contract.events.ServerCaught().get_logs(from_block=from_block)
        return [
            (
                int(log["args"]["round"]),
                str(log["args"]["accuser"]),
                Offence(log["args"]["offence"]),
                "0x" + bytes(log["transactionHash"]).hex(),
            )
            for log in logs
        ]

    def _call(self, function: Any) -> Any:
        """A view, called from this client's sender when it has one (views do not depend on it)."""
        return call(function, sender=self.sender)

    def _sender(self) -> str:
        if self.sender is None:
            raise ChainError("this bulletin board client is read-only: it has no sender account")
        return self.sender
