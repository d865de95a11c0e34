"""Ethereum accounts for SecCL's parties: deterministic keys, funding, and locally signed sending."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.types import Wei

from seccl.chain.backends import ChainBackend
from seccl.chain.transactions import TxReceipt

SERVER_FUNDS_WEI = 10**21  # 1,000 ether of test money: far more than any run spends


def derive_account(seed: int, role: str) -> LocalAccount:
    """A deterministic key for ``role`` (e.g. ``"server"``, ``"participant-3"``) in a seeded run.

    Keys derived from a public seed are for simulations only; a deployment brings its own.
    """
    return Account.from_key(keccak(text=f"seccl/{seed}/{role}"))


def fund(backend: ChainBackend, address: str, wei: int = SERVER_FUNDS_WEI) -> TxReceipt:
    """Send ``wei`` from the backend's unlocked account to ``address``."""
    w3 = backend.connect()
    sent = w3.eth.send_transaction(
        {"from": backend.server_account(), "to": Web3.to_checksum_address(address), "value": Wei(wei)}
    )
    receipt = w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.005)
    return TxReceipt("0x" + bytes(sent).hex(), int(receipt["gasUsed"]), int(receipt["blockNumber"]))


def signing_connection(backend: ChainBackend, account: LocalAccount) -> Web3:
    """A connection whose transactions ``from`` ``account`` are signed locally with its key."""
    w3 = backend.connect()
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    return w3
