"""What a consortium does before a deployed session, one function per step: each party makes its
own key; the server deploys the contracts for the agreed roster and writes the session file; for
trials, a data set is split into one private file per participant."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from eth_account import Account

from seccl.chain.accounts import KDF_ITERATIONS, fund, load_keystore, new_account, signing_connection
from seccl.chain.backends import RpcChain
from seccl.chain.bulletin_board import Phases
from seccl.deploy.data_files import write_dataset_file, write_participant_file
from seccl.deploy.session_file import SessionFile
from seccl.learning.splits import load_participant_data
from seccl.roles.settings import LearningSettings
from seccl.runtime.establish import establish_session


def new_key(path: Path, passphrase_file: Path) -> str:
    """Write a fresh random key to ``path`` as a V3 keystore (private, 0600; never overwritten),
    encrypted with the passphrase in ``passphrase_file``, which is made with 256 random bits if it
    does not exist; returns the key's address."""
    path, passphrase_file = Path(path), Path(passphrase_file)
    if path.exists():
        raise FileExistsError(f"{path} exists: a key is never overwritten")
    if not passphrase_file.exists():
        _write_private(passphrase_file, secrets.token_hex(32).encode())
    account = new_account()
    # The run keys' KDF settings: the passphrase is random, so a slow KDF would add nothing.
    keystore = Account.encrypt(
        account.key, passphrase_file.read_text().strip(), kdf="pbkdf2", iterations=KDF_ITERATIONS
    )
    _write_private(path, json.dumps(keystore).encode())
    return str(account.address)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def create_session(
    *,
    chain_url: str,
    server_key: Path,
    passphrase_file: Path,
    participants: Sequence[str],
    out: Path,
    seed: int,
    rounds: int,
    candidate_fraction: float,
    settings: LearningSettings,
    phases: Phases,
    max_abs_value: float = 10.0,
    fund_parties: bool = False,
) -> SessionFile:
    """Deploy the session's contracts from the server's key and write the session file.

    ``fund_parties`` pays every party from the node's first unlocked account (a dev chain such
    as anvil); on a real chain each party brings its own ether.
    """
    backend = RpcChain(chain_url)
    server = load_keystore(Path(server_key), Path(passphrase_file).read_text().strip())
    if len(set(participants)) != len(participants):
        raise ValueError("the roster names a participant twice")
    if server.address in participants:
        raise ValueError("the server cannot also be a participant")
    if fund_parties:
        for address in (server.address, *participants):
            fund(backend, address)
    w3 = signing_connection(backend, server)
    first_block = int(w3.eth.block_number) + 1
    session, _, _, _ = establish_session(
        w3,
        server,
        list(participants),
        seed=seed,
        candidate_fraction=candidate_fraction,
        settings=settings,
        phases=phases,
        max_abs_value=max_abs_value,
    )
    agreed = SessionFile(session, seed, rounds, settings, chain_url, first_block)
    agreed.write(Path(out))
    return agreed


def split_data(
    *,
    dataset: str,
    participants: int,
    out_dir: Path,
    seed: int,
    split: str = "iid",
    alpha: float = 0.5,
    per_participant: int | None = None,
    validation_fraction: float = 0.2,
    data_root: Path | None = None,
) -> list[Path]:
    """One private ``.npz`` per participant (``participant-NNNN.npz``) and the held-out
    ``test.npz``, exactly the parts a simulation with the same settings gives its participants."""
    parts, test = load_participant_data(
        dataset=dataset,
        data_root=str(data_root) if data_root is not None else None,
        participants=participants,
        split=split,
        alpha=alpha,
        per_participant=per_participant,
        validation_fraction=validation_fraction,
        seed=seed,
    )
    out_dir = Path(out_dir)
    paths = [write_participant_file(out_dir / f"participant-{i:04d}.npz", p) for i, p in enumerate(parts)]
    write_dataset_file(out_dir / "test.npz", test)
    return paths
