"""What a killed run needs to resume: the parties' keys, and the state at the end of each round.

A checkpoint is two files. ``checkpoint-NNNN.npz`` holds the parameter vectors by content hash;
``checkpoint.json`` names the round, the npz file and everything else (the session, each party's
small state, the round records and the evidence so far). Both are written atomically and the JSON
last, so it is the commit point: a crash between the two leaves the previous checkpoint whole.
The chain is saved before the checkpoint, so the chain is never behind it; where it is ahead (a
round finished on the chain but not here), resuming replays that round and posts nothing twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount

from seccl.chain.accounts import KDF_ITERATIONS, PASSPHRASE_ENV, load_keystore
from seccl.files import atomic_write_bytes

KEYS_DIR = "keys"
CHECKPOINT = "checkpoint.json"


class ResumeError(Exception):
    """The run directory cannot be resumed (what is missing or inconsistent is said)."""


def save_keys(run_dir: Path, server: LocalAccount, participants: list[LocalAccount]) -> Path:
    """Write every party's key as an encrypted V3 keystore (geth, cast and wallets read them)
    into ``run_dir/keys``, private (0600). The simulation holds every key in one process anyway;
    a deployment keeps each key with its owner."""
    keys = Path(run_dir) / KEYS_DIR
    keys.mkdir(parents=True, exist_ok=True)
    os.chmod(keys, 0o700)
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if passphrase is None:
        passphrase = secrets.token_hex(32)
        atomic_write_bytes(keys / "passphrase", passphrase.encode(), private=True)
    named = [("server", server), *((f"participant-{i:04d}", a) for i, a in enumerate(participants))]
    for name, account in named:
        keystore = Account.encrypt(account.key, passphrase, kdf="pbkdf2", iterations=KDF_ITERATIONS)
        atomic_write_bytes(keys / f"{name}.json", json.dumps(keystore).encode(), private=True)
    return keys


def load_keys(run_dir: Path) -> tuple[LocalAccount, list[LocalAccount]]:
    """The server's and the participants' accounts saved by :func:`save_keys`."""
    keys = Path(run_dir) / KEYS_DIR
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if passphrase is None:
        file = keys / "passphrase"
        if not file.is_file():
            raise ResumeError(f"{file} is missing: set {PASSPHRASE_ENV} to the passphrase of the run's keys")
        passphrase = file.read_text()
    try:
        server = load_keystore(keys / "server.json", passphrase)
        paths = sorted(keys.glob("participant-*.json"))
        return server, [load_keystore(p, passphrase) for p in paths]
    except (OSError, ValueError) as exc:
        raise ResumeError(f"cannot read the run's keys in {keys}: {exc}") from None


def array_key(array: np.ndarray) -> str:
    """The content hash that names a parameter vector in a checkpoint."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def write_checkpoint(
    run_dir: Path, round_: int, state: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Commit the state at the end of ``round_`` (0: right after the session was set up)."""
    run_dir = Path(run_dir)
    name = f"checkpoint-{round_:04d}.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(run_dir / name, buffer.getvalue())
    document = {"round": round_, "arrays": name, **state}
    atomic_write_bytes(run_dir / CHECKPOINT, json.dumps(document, indent=1).encode())
    for old in run_dir.glob("checkpoint-*.npz"):
        if old.name != name:
            old.unlink(missing_ok=True)


def read_checkpoint(run_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The last committed checkpoint (its JSON and its arrays), or None if there is none."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
        with np.load(Path(run_dir) / document["arrays"]) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, KeyError) as exc:
        raise ResumeError(f"the checkpoint in {run_dir} cannot be read: {exc}") from None
    return document, arrays
