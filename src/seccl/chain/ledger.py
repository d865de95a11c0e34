"""Every transaction of a session as the chain records it: funding, deployment, each post, ballot,
tally and accusation, reverted ones included, read block by block from the chain itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import Web3Exception

from seccl.chain.artifacts import load_artifact


@dataclass(frozen=True)
class LedgerEntry:
    """One transaction: where it is, who sent it, what it called, whether it took effect."""

    block: int
    tx_id: str
    sender: str
    role: str  # "server", "participant <i>", or "node" (the node's unlocked funding account)
    action: str  # the contract function, "deploy <Contract>", or "fund"
    round: int | None
    subject: str | None  # whose message it records: the author of an update, the voter of a ballot
    status: str  # "succeeded" or "reverted"
    gas: int


class Ledger:
    """Reads the session's transactions from ``first_block`` on, incrementally (each block once)."""

    def __init__(
        self,
        w3: Web3,
        *,
        first_block: int,
        server: str,
        participants: tuple[str, ...],
        contracts: dict[str, str],
    ):
        self.w3 = w3
        self.entries: list[LedgerEntry] = []
        self._next = first_block
        self._roles = {server.lower(): "server"}
        self._roles.update({a.lower(): f"participant {i}" for i, a in enumerate(participants)})
        self._names = {address.lower(): name for name, address in contracts.items()}
        self._contracts = {
            address.lower(): w3.eth.contract(
                address=Web3.to_checksum_address(address), abi=load_artifact(name).abi
            )
            for name, address in contracts.items()
        }

    @property
    def last_block(self) -> int:
        """The last block read so far (the one before ``first_block`` before the first update)."""
        return self._next - 1

    def update(self) -> list[LedgerEntry]:
        """Read every block mined since the last call; returns all entries so far."""
        latest = int(self.w3.eth.block_number)
        while self._next <= latest:
            block = self.w3.eth.get_block(self._next, full_transactions=True)
            for tx in block["transactions"]:
                self.entries.append(self._entry(self._next, tx))
            self._next += 1
        return list(self.entries)

    def _entry(self, number: int, tx: Any) -> LedgerEntry:
        tx_id = "0x" + bytes(tx["hash"]).hex()
        receipt = self.w3.eth.get_transaction_receipt(tx["hash"])
        sender = str(tx["from"])
        action, round_, subject = self._action(tx, receipt)
        return LedgerEntry(
            block=number,
            tx_id=tx_id,
            sender=sender,
            role=self._roles.get(sender.lower(), "node"),
            action=action,
            round=round_,
            subject=subject,
            status="succeeded" if int(receipt["status"]) == 1 else "reverted",
            gas=int(receipt["gasUsed"]),
        )

    def _action(self, tx: Any, receipt: Any) -> tuple[str, int | None, str | None]:
        to = tx.get("to")
        if to is None:
            created = str(receipt.get("contractAddress") or "").lower()
            return (f"deploy {self._names.get(created, 'contract')}", None, None)
        contract = self._contracts.get(str(to).lower())
        if contract is None:
            to_whom = str(to) if int(tx.get("value", 0)) else None
            return ("fund" if to_whom else "call", None, to_whom)
        try:
            function, args = contract.decode_function_input(tx.get("input", tx.get("data")))
        except (ValueError, Web3Exception):  # not one of the contract's functions
            return ("unknown call", None, None)
        round_ = args.get("round")
        subject = args.get("author", args.get("voter"))
        return (str(function.fn_name), None if round_ is None else int(round_), subject)
