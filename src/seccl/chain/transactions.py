"""Sends contract transactions with explicit gas and turns any revert into a typed exception."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.types import TxReceipt as Web3Receipt

from seccl.chain.errors import ChainError, decode_revert, revert_data


@dataclass(frozen=True)
class TxReceipt:
    """A mined transaction: its hash (the Tx-ID), the gas it used and its block."""

    tx_hash: str
    gas_used: int
    block_number: int


def _raise_typed(exc: Exception, tx_hash: str | None = None) -> None:
    data = revert_data(exc)
    if data is not None:
        raise decode_revert(data, tx_hash) from exc


def call(function: Any, *, sender: str | None = None) -> Any:
    """A read-only call; a revert becomes the contract's typed exception.

    Naming the ``sender`` (any funded account; views do not depend on it) spares the embedded
    EVM's provider a look-up of the node's accounts on every call."""
    try:
        return function.call({"from": sender} if sender else {})
    except Exception as exc:
        _raise_typed(exc)
        raise


def transact(w3: Web3, function: Any, *, sender: str, gas: int) -> tuple[TxReceipt, Web3Receipt]:
    """Send ``function`` from ``sender`` with a fixed gas limit and wait for its receipt.

    The gas limit is explicit because estimating it first halves the throughput of the embedded
    EVM. A transaction that reverted on-chain is replayed as a call at its parent block to learn
    its custom error, which is raised with the failed transaction's hash.
    """
    try:
        sent = function.transact({"from": sender, "gas": gas})
    except Exception as exc:
        _raise_typed(exc)
        raise
    # anvil answers before the receipt exists; poll briskly (web3 waits 0.1 s by default).
    receipt = w3.eth.wait_for_transaction_receipt(sent, timeout=120, poll_latency=0.005)
    tx_hash = "0x" + bytes(sent).hex()
    if receipt["status"] == 1:
        return TxReceipt(tx_hash, int(receipt["gasUsed"]), int(receipt["blockNumber"])), receipt
    # Replay on the parent block's state first (what the transaction saw), then in its own block,
    # whose timestamp it saw: a deadline that passed between the parent block and its own (a
    # phase closed) reverts only there.
    for block in (receipt["blockNumber"] - 1, receipt["blockNumber"]):
        try:
            if hasattr(function, "call"):
                function.call({"from": sender, "gas": gas}, block_identifier=block)
            else:  # a constructor: replay its creation code
                w3.eth.call({"from": sender, "gas": gas, "data": function.data_in_transaction}, block)
        except Exception as exc:
            _raise_typed(exc, tx_hash)
            raise ChainError(f"transaction {tx_hash} failed: {exc}") from exc
    raise ChainError(f"transaction {tx_hash} failed without a revert reason (out of gas at {gas}?)")


def event_in_transaction(w3: Web3, tx_hash: str, event: Any) -> Any | None:
    """The arguments of the last ``event`` (a web3 contract event) that successful transaction
    ``tx_hash`` emitted from that event's contract, or None: one receipt, no log scan."""
    try:
        receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except Exception:  # web3 raises TransactionNotFound; eth-tester its own type
        return None
    if receipt is None or receipt["status"] != 1:
        return None
    address = Web3.to_checksum_address(event.address)
    topic = bytes.fromhex(str(event.topic).removeprefix("0x"))
    logs = [
        log
        for log in receipt["logs"]
        if Web3.to_checksum_address(log["address"]) == address
        and log["topics"]
        and bytes(log["topics"][0]) == topic  # not another event of the same contract
    ]
    return event().process_log(logs[-1])["args"] if logs else None
