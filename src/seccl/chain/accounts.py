"""Ethereum accounts for SecCL's parties: random keys or keystores, funding, and locally signed sending."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

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


MAX_KEYSTORE_BYTES = 64 * 1024
"""A V3 keystore takes about 500 bytes; a file a hundred times larger is not one."""
MAX_KEYSTORE_STRUCTURES = 32
"""A keystore holds a handful of objects (its crypto section and its parameters): bounding how
many there are bounds how deep they nest before the parser, which recurses per level, runs."""
MAX_PBKDF2_ITERATIONS = 10_000_000  # eth-keyfile writes 1,000,000 by default; SecCL 100,000
MAX_SCRYPT_WORK = 2**24  # n·r·p; geth and eth-account write 2^18 · 8 · 1
MAX_SCRYPT_MEMORY = 2**30  # 128·n·r bytes: geth's default needs 256 MiB
MAX_KEY_BYTES = 64  # the derived key's length (dklen): 32 in every keystore


class KeystoreError(ValueError):
    """A keystore cannot be used: not a keystore, malformed, too costly to open, or the wrong passphrase."""


def load_keystore(path: Path, password: str) -> LocalAccount:
    """The account in the encrypted keystore at ``path``.

    A file that cannot be read raises OSError; anything else wrong with it (a wrong password
    included) raises :class:`KeystoreError`, a ValueError. The file's size, structure and key
    derivation cost are bounded before it is parsed or decrypted, so a crafted file can neither
    crash the reader nor keep it busy for hours.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEYSTORE_BYTES + 1)
    except ValueError as exc:  # a path with a NUL in it
        raise KeystoreError(f"keystore {str(path)[:100]!r}: {exc}") from None
    if len(data) > MAX_KEYSTORE_BYTES:
        raise KeystoreError(f"keystore {path}: larger than {MAX_KEYSTORE_BYTES} bytes; not a keystore")
    if data.count(b"{") + data.count(b"[") > MAX_KEYSTORE_STRUCTURES:
        raise KeystoreError(f"keystore {path}: more than {MAX_KEYSTORE_STRUCTURES} objects; not a keystore")
    try:
        document = json.loads(data.decode("utf-8"), parse_int=_small_int, parse_constant=_not_json)
    except ValueError as exc:  # also UnicodeDecodeError, and an integer too long to convert
        raise KeystoreError(f"keystore {path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise KeystoreError(f"keystore {path}: not a JSON object but {type(document).__name__}")
    # The same keys eth-keyfile reads ("Crypto" is geth's spelling), so what is checked is what is used.
    document = _lowercase_keys(document)
    _check_kdf(path, document)
    try:
        key = Account.decrypt(document, password)
    except ValueError as exc:
        if "mismatch" in str(exc):  # eth-keyfile's MAC (V3) or checksum (V4) check
            raise KeystoreError(f"keystore {path}: wrong passphrase ({exc})") from None
        raise KeystoreError(f"keystore {path} is malformed: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # eth-keyfile raises KeyError, TypeError, AssertionError... on a bad file
        raise KeystoreError(f"keystore {path} is malformed: {type(exc).__name__}: {exc}") from None
    try:
        return Account.from_key(key)
    except Exception as exc:  # eth-keys: a key of the wrong length, or outside the curve's order
        raise KeystoreError(f"keystore {path} holds no valid key: {type(exc).__name__}: {exc}") from None


def _small_int(text: str) -> int:
    if len(text) > 80:  # a uint256 has 78 digits; Python refuses to convert beyond 4,300
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _lowercase_keys(document: dict) -> dict:
    return {
        k.lower() if isinstance(k, str) else k: _lowercase_keys(v) if isinstance(v, dict) else v
        for k, v in document.items()
    }


def _check_kdf(path: Path, document: dict) -> None:
    """Refuse key derivation parameters that would cost more than any real keystore's."""
    crypto = document.get("crypto")
    if not isinstance(crypto, dict):
        raise KeystoreError(f"keystore {path}: no crypto section")
    kdf: Any = crypto.get("kdf")
    params: Any = crypto.get("kdfparams")
    if isinstance(kdf, dict):  # the V4 layout: {"function": ..., "params": {...}}
        kdf, params = kdf.get("function"), kdf.get("params")
    if not isinstance(params, dict):
        raise KeystoreError(f"keystore {path}: no key derivation parameters")
    given: dict = params

    def integer(name: str, high: int) -> int:
        value = given.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
            raise KeystoreError(f"keystore {path}: kdfparams.{name} must be an integer from 1 to {high}")
        return value

    integer("dklen", MAX_KEY_BYTES)
    if kdf == "pbkdf2":
        integer("c", MAX_PBKDF2_ITERATIONS)
    elif kdf == "scrypt":
        n, r, p = integer("n", MAX_SCRYPT_WORK), integer("r", MAX_SCRYPT_WORK), integer("p", MAX_SCRYPT_WORK)
        if n * r * p > MAX_SCRYPT_WORK or 128 * n * r > MAX_SCRYPT_MEMORY:
            raise KeystoreError(
                f"keystore {path}: scrypt n={n}, r={r}, p={p} costs more than any keystore's "
                f"(n·r·p at most {MAX_SCRYPT_WORK}, 128·n·r at most {MAX_SCRYPT_MEMORY} bytes)"
            )
    else:
        raise KeystoreError(f"keystore {path}: key derivation {str(kdf)[:40]!r}; allowed: pbkdf2, scrypt")


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
