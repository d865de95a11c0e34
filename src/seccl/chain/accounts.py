"""Ethereum accounts for SecCL's parties: random keys or keystores, funding, and locally signed sending."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.types import Wei

from seccl.chain.backends import ChainBackend
from seccl.chain.transactions import TxReceipt

# 10 ether of test money per party: a 100-participant, 10-round session burns some 4·10^8 gas,
# 0.4 ether at 1 gwei, nearly all of it the server's; a dev node's 10,000 ether fund many runs.
SERVER_FUNDS_WEI = 10**19

PASSPHRASE_ENV = "SECCL_KEYS_PASSPHRASE"
"""If set, the passphrase of a party's keystores (a run's keys, a node's key): no passphrase file."""

# The passphrase is 256 random bits (or the user's own), so the KDF's work factor adds nothing
# against guessing; eth-account's default (scrypt, 0.7 s a key) would add 15 s to a 21-key run.
KDF_ITERATIONS = 100_000


def new_account() -> LocalAccount:
    """A fresh random key (from the operating system's randomness), never derived from a seed."""
    return Account.from_key(secrets.token_bytes(32))


def save_keystore(account: LocalAccount, path: Path, password: str) -> Path:
    """Write ``account``'s key to ``path`` as an encrypted keystore (eth-account's V3 format),
    readable by geth, cast and any Ethereum wallet; the file is created private (0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(Account.encrypt(account.key, password))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(data)
    return path


def load_keystore(path: Path, password: str) -> LocalAccount:
    """The account in the encrypted keystore at ``path``; a wrong password raises ValueError."""
    return Account.from_key(Account.decrypt(json.loads(Path(path).read_text()), password))


def fund(backend: ChainBackend, address: str, wei: int = SERVER_FUNDS_WEI) -> TxReceipt:
    """Send ``wei`` from the backend's unlocked account to ``address``."""
    w3 = backend.connect()
    sent = w3.eth.send_transaction(
        {"from": backend.server_account(), "to": Web3.to_checksum_address(address), "value": Wei(wei)}
    )
    receipt = w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.005)
    return TxReceipt("0x" + bytes(sent).hex(), int(receipt["gasUsed"]), int(receipt["blockNumber"]))


def signing_connection(backend: ChainBackend, account: LocalAccount) -> Web3:
    """A connection whose transactions ``from`` ``account`` are signed locally with its key.

    web3's ``validation`` middleware is left out: it asks the node for its chain id on every call
    and transaction (twice per call) only to compare it with a ``chainId`` field that nothing
    here sets by hand; the signing middleware takes the chain id from the node itself.
    """
    w3 = backend.connect()
    w3.middleware_onion.remove("validation")
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    return w3
