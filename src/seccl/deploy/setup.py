"""What a consortium does before a deployed session, one function per step: each party makes its
own key; the server deploys the contracts for the agreed roster and writes the session file; for
trials, a data set is split into one private file per participant."""

from __future__ import annotations

import contextlib
import json
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path

from eth_account import Account
from eth_utils import is_address, to_checksum_address
from web3.exceptions import Web3Exception

from seccl.chain.accounts import KDF_ITERATIONS, fund, load_keystore, new_account, signing_connection
from seccl.chain.backends import RpcChain
from seccl.chain.bulletin_board import Phases
from seccl.chain.session import check_cancun
from seccl.deploy.data_files import write_dataset_file, write_participant_file
from seccl.deploy.session_file import SessionFile
from seccl.files import write_new_private
from seccl.learning.data import load_dataset
from seccl.learning.splits import split_participants
from seccl.roles.settings import LearningSettings
from seccl.runtime.establish import establish_session

MAX_PASSPHRASE_BYTES = 4096
MAX_ROSTER_BYTES = 1 << 20  # 256 addresses take 11 KB


class SetupError(ValueError):
    """A set-up step's input is wrong: what is wrong, and what is allowed, is said."""


def unwritable(directory: Path) -> str | None:
    """Why ``directory`` cannot be made or written into, or None if it can. It is made, with a
    scratch file in it, and whatever this made is removed again, so nothing is left behind.

    ``os.access`` says yes to root everywhere, also on a read-only file system and under /proc
    or /sys, where the first real write would fail only after the work it was to keep."""
    directory = Path(directory)
    made: list[Path] = []
    missing = directory
    while not missing.exists() and missing != missing.parent:
        made.append(missing)
        missing = missing.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        doing = "make the directory" if not directory.is_dir() else "write into"
        return f"cannot {doing} {directory} ({exc.strerror or exc})"
    finally:
        for path in made:  # the deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
    return None


def read_passphrase(path: Path, flag: str = "--passphrase-file") -> str:
    """The passphrase in ``path`` (its text, without the surrounding white space).

    An empty one is refused: a keystore encrypted with it would be readable by anyone who has the
    file, and a passphrase file left empty by mistake would go unnoticed."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PASSPHRASE_BYTES + 1)
    except OSError as exc:
        raise SetupError(f"{flag} {path}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_PASSPHRASE_BYTES:
        raise SetupError(f"{flag} {path}: longer than {MAX_PASSPHRASE_BYTES} bytes; not a passphrase file")
    try:
        passphrase = data.decode().strip()
    except UnicodeDecodeError:
        raise SetupError(f"{flag} {path}: not UTF-8 text") from None
    if not passphrase:
        raise SetupError(
            f"{flag} {path}: the file is empty; allowed: a file holding the passphrase (`seccl keys "
            "new` makes one of 256 random bits when the file does not exist)"
        )
    return passphrase


def read_roster(path: Path) -> list[str]:
    """The participants' addresses in the roster file ``path``: one a line, `#` starts a comment;
    each address once, at least 2."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_ROSTER_BYTES + 1)
        text = data.decode()
    except OSError as exc:
        raise SetupError(f"--roster {path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SetupError(f"--roster {path}: not UTF-8 text; allowed: addresses, one a line") from None
    if len(data) > MAX_ROSTER_BYTES:
        raise SetupError(f"--roster {path}: larger than {MAX_ROSTER_BYTES} bytes; not a roster")
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    addresses = [line for line in lines if line]
    bad = [a[:50] for a in addresses if not is_address(a)]
    if bad:
        raise SetupError(
            f"--roster {path}: not addresses: {', '.join(bad[:5])}; allowed: 0x and 40 hex digits"
        )
    if len(addresses) < 2:
        raise SetupError(f"--roster {path}: a session needs at least 2 participants, got {len(addresses)}")
    roster: list[str] = [to_checksum_address(a) for a in addresses]
    twice = sorted({a for a in roster if roster.count(a) > 1})
    if twice:
        raise SetupError(f"--roster {path}: names {', '.join(twice)} twice; allowed: each participant once")
    return roster


def new_key(path: Path, passphrase_file: Path) -> str:
    """Write a fresh random key to ``path`` as a V3 keystore (private, 0600; never overwritten),
    encrypted with the passphrase in ``passphrase_file``, which is made with 256 random bits if it
    does not exist (an empty one is refused); returns the key's address."""
    path, passphrase_file = Path(path), Path(passphrase_file)
    if path.exists():
        raise FileExistsError(f"{path} exists: a key is never overwritten")
    if not passphrase_file.exists():
        _write_private(passphrase_file, secrets.token_hex(32).encode(), "the passphrase file")
    passphrase = read_passphrase(passphrase_file)
    account = new_account()
    # The run keys' KDF settings: the passphrase is random, so a slow KDF would add nothing.
    keystore = Account.encrypt(account.key, passphrase, kdf="pbkdf2", iterations=KDF_ITERATIONS)
    _write_private(path, json.dumps(keystore).encode(), "the keystore")
    return str(account.address)


def _write_private(path: Path, data: bytes, what: str) -> None:
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise SetupError(f"cannot write {what} {path}: {above} is a file, not a directory")
    try:
        write_new_private(path, data)
    except OSError as exc:
        raise SetupError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


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
    as anvil); on a real chain each party brings its own ether. Everything that can be checked is
    checked before the first transaction: the roster, the key, the node's EVM, the server's funds.
    """
    backend = RpcChain(chain_url)
    problem = unwritable(Path(out).parent)
    if problem is not None or Path(out).is_dir():
        raise SetupError(
            f"--out {out}: {problem or 'is a directory'}; allowed: a file path that can be written"
        )
    if not Path(server_key).is_file():
        raise SetupError(f"--server-key {server_key}: no such file; allowed: the server's keystore")
    server = load_keystore(Path(server_key), read_passphrase(Path(passphrase_file)))
    if len(set(participants)) != len(participants):
        raise SetupError("the roster names a participant twice; allowed: each participant once")
    if server.address in participants:
        raise SetupError(
            f"the roster names the server's own address {server.address} (--server-key {server_key}); "
            "allowed: participants other than the server"
        )
    w3 = signing_connection(backend, server)
    check_cancun(w3, f"the node at {chain_url}")
    if not fund_parties and int(w3.eth.get_balance(server.address)) == 0:
        raise SetupError(
            f"--server-key {server_key}: its address {server.address} holds no ether on the node at "
            f"{chain_url}, and deploying the contracts costs gas; allowed: a funded key (on a dev "
            "chain such as anvil, --fund pays every party from the node's first account)"
        )
    first_block = int(w3.eth.block_number) + 1
    try:
        if fund_parties:
            for address in (server.address, *participants):
                fund(backend, address)
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
    except (Web3Exception, ValueError) as exc:
        if "insufficient funds" not in str(exc).lower():
            raise
        who = "the node's first account (--fund)" if fund_parties else f"--server-key {server_key}"
        raise SetupError(
            f"{who} cannot pay for the deployment on the node at {chain_url}: {exc}; allowed: an "
            "account with enough ether"
        ) from None
    agreed = SessionFile(session, seed, rounds, settings, chain_url, first_block)
    try:
        agreed.write(Path(out))
    except OSError as exc:
        raise SetupError(
            f"--out {out}: cannot write the session file ({exc.strerror or exc}); the contracts are "
            f"deployed: board {session.board}, consensus {session.consensus}"
        ) from None
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
    """One private ``.npz`` per participant (``participant-NNNN.npz``, 0600) and the held-out
    ``test.npz``, exactly the parts a simulation with the same settings gives its participants.

    Every setting is checked, and ``out_dir`` tried, before the data set loads."""
    if per_participant is not None and per_participant < 2:
        raise SetupError(
            f"--per-participant: got {per_participant}; allowed: 2 or more (each participant keeps "
            "a share of its samples for validation)"
        )
    if split == "dirichlet" and not alpha > 0:
        raise SetupError(f"--alpha: got {alpha}; allowed: more than 0")
    out_dir = Path(out_dir)
    problem = unwritable(out_dir)
    if problem is not None:
        raise SetupError(f"--out {out_dir}: {problem}; allowed: a directory this user can create and write")
    train, test = load_dataset(dataset, root=Path(data_root) if data_root is not None else None, seed=seed)
    if per_participant is not None and per_participant * participants > len(train):
        raise SetupError(
            f"--per-participant: got {per_participant}, but {participants} participants × "
            f"{per_participant} samples need {per_participant * participants} and the {dataset} "
            f"train pool holds {len(train)}; allowed: at most {len(train) // participants}"
        )
    if per_participant is None and len(train) // participants < 2:
        raise SetupError(
            f"--participants: got {participants}, too many for the {len(train)} samples of the "
            f"{dataset} train pool; allowed: at most {len(train) // 2}"
        )
    # As load_participant_data does (and so a simulation of the same settings).
    parts = split_participants(
        train,
        participants,
        scheme=split,
        alpha=alpha,
        validation_fraction=validation_fraction,
        per_participant=per_participant,
        seed=seed,
    )
    paths = [write_participant_file(out_dir / f"participant-{i:04d}.npz", p) for i, p in enumerate(parts)]
    write_dataset_file(out_dir / "test.npz", test)
    return paths
