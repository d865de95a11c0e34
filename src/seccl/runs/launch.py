"""Runs a RunConfig: checks its chain, loads its data, casts its adversaries, builds the
simulation, runs it."""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seccl.chain.accounts import new_account
from seccl.chain.anvil import find_anvil, open_backend
from seccl.chain.backends import RpcChain
from seccl.chain.errors import ChainError, ChainUnavailableError
from seccl.chain.session import check_cancun
from seccl.learning.backdoor import BackdoorProbe
from seccl.learning.data import Dataset, DatasetNotFoundError, IdxFormatError, ParticipantData, load_dataset
from seccl.learning.splits import split_participants
from seccl.protocol.archive import RunArchive
from seccl.roles.adversaries.poisoning import BackdoorParticipant
from seccl.roles.adversaries.registry import attack_class, attack_factory, choose_adversaries
from seccl.roles.adversaries.server import SERVER_ATTACKS, TargetedServer
from seccl.roles.settings import LearningSettings
from seccl.runs.checkpoint import KEYS_DIR, load_keys, read_checkpoint, save_keys
from seccl.runs.config import ConfigError, RunConfig
from seccl.runs.durability import RunRecorder, checkpointed_session, restore
from seccl.runs.settings import SETTINGS, is_url
from seccl.runtime.results import RunResult
from seccl.runtime.simulation import Simulation

ARCHIVE_NAME = "messages.sqlite"
"""Every signed message and model of a run, by digest (see :mod:`seccl.protocol.archive`)."""


def learning_settings(config: RunConfig) -> LearningSettings:
    return LearningSettings(
        local_epochs=config.local_epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        share_fraction=config.share_fraction,
        # The gram-gate rule includes its aggregation (docs/PROTOCOL.md §5).
        aggregation="clipped-shared-mean" if config.election == "gram-gate" else config.aggregation,
        election=config.election,
        assumed_fraction=config.assumed_fraction,
    )


def participant_data(config: RunConfig) -> tuple[list[ParticipantData], Dataset]:
    """The participants' private parts and the held-out test set that ``config`` names.

    A missing or malformed data set, or more samples than its train pool holds, is a
    :class:`ConfigError` that names the setting.
    """
    where = SETTINGS["dataset"].label("dataset") + f" = {config.dataset}"
    if config.data_root is not None:
        where += f", data_root (--data-root) = {config.data_root}"
    try:
        train, test = load_dataset(
            config.dataset, root=Path(config.data_root) if config.data_root else None, seed=config.seed
        )
    except (DatasetNotFoundError, IdxFormatError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except OSError as exc:  # an unreadable file: which one, and why (not "[Errno 13] ...")
        file = f" {exc.filename}" if exc.filename is not None else ""
        raise ConfigError(f"{where}: cannot read the data set{file}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a malformed npm digit file
        raise ConfigError(f"{where}: cannot read the data set: {exc}") from None
    n = config.participants
    wanted = config.per_participant
    if wanted is not None and wanted * n > len(train):
        raise ConfigError(
            f"{SETTINGS['per_participant'].label('per_participant')}: got {wanted}, but {n} participants "
            f"× {wanted} samples need {wanted * n} and the {config.dataset} train pool holds "
            f"{len(train)}; allowed: at most {len(train) // n}"
        )
    if wanted is None and len(train) // n < 2:
        raise ConfigError(
            f"{SETTINGS['participants'].label('participants')}: got {n}, too many for the "
            f"{len(train)} samples of the {config.dataset} train pool"
        )
    # As load_participant_data does, from the pool loaded once here.
    parts = split_participants(
        train,
        n,
        scheme=config.split,
        alpha=config.alpha,
        validation_fraction=config.validation_fraction,
        per_participant=wanted,
        seed=config.seed,
    )
    return parts, test


PROBE_TIMEOUT = 5.0
"""Seconds to wait for a JSON-RPC node's answer before a run starts."""


def _rpc(url: str, method: str, timeout: float = PROBE_TIMEOUT) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s): the config checked it
        answer = json.loads(response.read())
    if "error" in answer:
        raise ValueError(f"{method} failed: {answer['error']}")
    return answer["result"]


def chain_answers(url: str) -> bool:
    """Whether a JSON-RPC node answers at ``url`` now."""
    try:
        _rpc(url, "eth_chainId", timeout=2.0)
    except Exception:
        return False
    return True


def check_chain(config: RunConfig) -> None:
    """Before any data loads or process starts: the chain ``config`` names can be used.

    anvil must be installed; a URL must answer JSON-RPC, report ``chain_id`` when one is given,
    have an unlocked account to fund the session from, and run an EVM of Cancun or later (the
    contracts' target: an older one, ganache's, would fail the first deployment).
    """
    label = SETTINGS["chain"].label("chain")
    if config.chain == "anvil":
        try:
            find_anvil()
        except ChainUnavailableError as exc:
            raise ConfigError(f'{label}: got "anvil", but {exc}') from None
        return
    if not is_url(config.chain):
        return
    url = config.chain
    try:
        chain_id = int(_rpc(url, "eth_chainId"), 16)
        accounts = _rpc(url, "eth_accounts")
    except urllib.error.URLError as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"{label}: no Ethereum JSON-RPC node answers at {url} ({reason})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{label}: {url} does not answer as an Ethereum JSON-RPC node ({exc})") from None
    if config.chain_id is not None and chain_id != config.chain_id:
        raise ConfigError(
            f"{SETTINGS['chain_id'].label('chain_id')}: the node at {url} reports chain id {chain_id}, "
            f"not the {config.chain_id} asked for"
        )
    if not accounts:
        raise ConfigError(
            f"{label}: the node at {url} has no unlocked account to fund the session's accounts from"
        )
    try:
        check_cancun(RpcChain(url, timeout=PROBE_TIMEOUT).connect(), f"the node at {url}")
    except ChainError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def server_factory(name: str, target: int) -> functools.partial:
    """A ``server_factory`` for the malicious server ``name``, aimed at participant ``target``."""
    cls, options = SERVER_ATTACKS[name]
    if issubclass(cls, TargetedServer):
        options = {**options, "target": target}
    return functools.partial(cls, **options)


def run_config(
    config: RunConfig,
    *,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    progress_log: Callable[[str], None] | None = None,
    on_round: Callable[[RunResult], None] | None = None,
    resume: bool = False,
    data: tuple[list[ParticipantData], Dataset] | None = None,
) -> RunResult:
    """Run the session ``config`` describes, on its chain backend. ``progress`` shows a progress
    bar; ``progress_log`` receives a line at the end of every phase instead (for a log file).

    ``resume`` continues the run in ``config.run_dir`` from its last checkpoint, with its own
    keys and chain; a run that died before its first checkpoint starts again with its keys.
    ``data`` is :func:`participant_data` of ``config``, when the caller has loaded it already.
    """
    say = log or (lambda _line: None)
    parts, test = data if data is not None else participant_data(config)
    participants = None
    adversaries: set[int] = set()
    round_metrics = None
    if config.attack:
        adversaries = choose_adversaries(config.participants, config.attack_fraction, config.seed)
        participants = attack_factory(config.attack, adversaries, start_round=config.attack_start_round)
        if issubclass(attack_class(config.attack), BackdoorParticipant):  # adaptive-backdoor too
            round_metrics = BackdoorProbe(test, target_label=0).metrics
        say(
            f"adversaries: participants {sorted(adversaries)} run {config.attack!r} "
            f"from round {config.attack_start_round}"
        )
    server = None
    if config.server_attack:
        server = server_factory(config.server_attack, config.attack_target)
        say(f"malicious server: {config.server_attack!r} ({server.func.__name__}, {server.keywords})")
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = None
    if resume and (run_dir / KEYS_DIR).is_dir():
        server_account, accounts = load_keys(run_dir)
        checkpoint = read_checkpoint(run_dir)
        if checkpoint is not None:
            say(f"resuming after round {checkpoint[0]['round']} of {config.rounds}")
    else:
        # Every party's own random key, saved before anything is sent, so a killed run resumes.
        server_account, accounts = new_account(), [new_account() for _ in range(config.participants)]
        save_keys(run_dir, server_account, accounts)
    with (
        open_backend(config.chain, run_dir) as backend,
        RunArchive(run_dir / ARCHIVE_NAME) as archive,
    ):
        simulation = Simulation(
            backend=backend,
            parts=parts,
            test=test,
            rounds=config.rounds,
            candidate_fraction=config.candidate_fraction,
            settings=learning_settings(config),
            seed=config.seed,
            progress=progress,
            log=log,
            participant_factory=participants,
            server_factory=server,
            round_metrics=round_metrics,
            adversaries=adversaries,
            progress_log=progress_log,
            on_round=on_round,
            accounts=accounts,
            server_account=server_account,
            recorder=RunRecorder(archive, model_dir=run_dir / "models", checkpoint_dir=run_dir),
            adopt=None if checkpoint is None else checkpointed_session(checkpoint[0]),
            workers=config.workers,
        )
        if checkpoint is not None:
            restore(simulation, *checkpoint)
        return simulation.run()
