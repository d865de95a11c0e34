"""A participant on its own machine: its key, its data, its own chain connection, the session it
agreed to, and a state directory of its own (its journal, its state between messages, its
evidence). It lives in one long-lived process, ``seccl node watch`` (:func:`watch`), beside its
SuperNode: that process acts on the chain's deadlines by itself, and answers each message the
SuperNode hands it, which Flower's per-message ClientApp forwards over a local socket
(:mod:`seccl.deploy.relay`). What it must remember is also kept on disk after every message, so a
participant whose process restarts carries on where it stopped."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

from seccl.chain.accounts import PASSPHRASE_ENV, load_keystore
from seccl.chain.backends import RpcChain
from seccl.chain.errors import ChainError, ChainUnavailableError
from seccl.deploy.data_files import read_participant_data
from seccl.deploy.relay import Fields, RelayServer
from seccl.deploy.session_file import SessionFile, SessionFileError
from seccl.deploy.wire import decode_request, encode_reply
from seccl.files import atomic_write_bytes
from seccl.protocol.archive import RunArchive
from seccl.protocol.errors import ProtocolError, shown
from seccl.protocol.instructions import (
    BallotReceipt,
    EvaluateRequest,
    FinalModelRequest,
    Reply,
    Request,
    RevealRequest,
    TrainRequest,
)
from seccl.roles.participant import Participant
from seccl.runtime.faults import maybe_kill_node

PHASES = ("updates", "reveals", "ballots", "election", "model")
"""A participant's own checks after each phase of a round, in order (``Participant.after_*``)."""

STATE = "state.pickle"
EVIDENCE = "evidence.json"
JOURNAL = "journal.sqlite"
LOG = "node.log"

# What a participant keeps between two messages: exactly the attributes its round logic reads
# (everything else, its connection, its data, its model, is rebuilt from its configuration).
_KEPT = (
    "evidence",
    "_params",
    "_board_model",
    "_round",
    "_own_update",
    "_own_sparse",
    "_own_evaluation",
    "_verified",
    "_invalid",
    "_reveals_read",
    "_trained",
)


class NodeConfigError(ValueError):
    """A SuperNode's node config does not name what a participant needs, or names it wrongly."""


_NODE_CONFIG_KEYS = ("key-file", "data", "chain-url", "session", "state-dir")
MAX_NODE_CONFIG_VALUE = 4096  # PATH_MAX: a longer path cannot be opened anyway
MAX_PASSPHRASE_BYTES = 4096


@dataclass(frozen=True)
class NodeConfig:
    """What a participant's SuperNode is configured with (``--node-config``)."""

    key_file: Path  # its encrypted keystore
    data: Path  # its private data: a .npz file of `seccl data split`, or an IDX directory
    chain_url: str  # its own JSON-RPC node: it never learns chain facts through the server
    session_file: Path  # the session it agreed to (`seccl session create`)
    state_dir: Path  # its journal, state and evidence
    passphrase_file: Path | None = None  # else $SECCL_KEYS_PASSPHRASE

    @classmethod
    def from_node_config(cls, raw: Mapping[str, Any]) -> NodeConfig:
        if not isinstance(raw, Mapping):
            raise NodeConfigError(f"the SuperNode's node config is not a mapping but {type(raw).__name__}")
        for key in (*_NODE_CONFIG_KEYS, "passphrase-file"):
            value = raw.get(key, "")
            # What Flower's --node-config can give; an integer str() cannot even print is no path.
            huge = isinstance(value, int) and value.bit_length() > 64
            if not isinstance(value, (str, int, float)) or huge:
                raise NodeConfigError(f"{key}: got {shown(value)}; allowed: a path or URL")
            if "\x00" in str(value) or len(str(value)) > MAX_NODE_CONFIG_VALUE:
                raise NodeConfigError(
                    f"{key}: got {shown(str(value))}; allowed: a path or URL of at most "
                    f"{MAX_NODE_CONFIG_VALUE} characters, without NUL"
                )
        required = _NODE_CONFIG_KEYS
        missing = [k for k in required if not str(raw.get(k, "")).strip()]
        if missing:
            raise NodeConfigError(
                f"the SuperNode's node config lacks {', '.join(missing)}; a SecCL participant needs "
                f"{', '.join(required)} (and passphrase-file, or ${PASSPHRASE_ENV})"
            )
        url = str(raw["chain-url"])
        if not url.startswith(("http://", "https://")):
            raise NodeConfigError(f"chain-url: got {shown(url)}; allowed: an http(s) JSON-RPC URL")
        passphrase = str(raw.get("passphrase-file", "")).strip()
        return cls(
            key_file=Path(str(raw["key-file"])),
            data=Path(str(raw["data"])),
            chain_url=url,
            session_file=Path(str(raw["session"])),
            state_dir=Path(str(raw["state-dir"])),
            passphrase_file=Path(passphrase) if passphrase else None,
        )

    def to_options(self) -> list[str]:
        """The options of ``seccl node watch`` that give this configuration."""
        options = ["--key-file", str(self.key_file), "--data", str(self.data), "--chain-url", self.chain_url]
        options += ["--session", str(self.session_file), "--state-dir", str(self.state_dir)]
        if self.passphrase_file is not None:
            options += ["--passphrase-file", str(self.passphrase_file)]
        return options

    def to_node_config(self) -> str:
        """The ``--node-config`` argument of ``flower-supernode`` that gives this configuration."""
        pairs = {
            "key-file": self.key_file,
            "data": self.data,
            "chain-url": self.chain_url,
            "session": self.session_file,
            "state-dir": self.state_dir,
        }
        if self.passphrase_file is not None:
            pairs["passphrase-file"] = self.passphrase_file
        return " ".join(f"{k}={json.dumps(str(v))}" for k, v in pairs.items())

    def passphrase(self) -> str:
        if self.passphrase_file is not None:
            try:
                with open(self.passphrase_file, "rb") as handle:
                    data = handle.read(MAX_PASSPHRASE_BYTES + 1)
            except (OSError, ValueError) as exc:  # ValueError: a path with a NUL in it
                reason = getattr(exc, "strerror", None) or exc
                raise NodeConfigError(f"passphrase-file {self.passphrase_file}: {reason}") from None
            if len(data) > MAX_PASSPHRASE_BYTES:
                raise NodeConfigError(
                    f"passphrase-file {self.passphrase_file}: longer than {MAX_PASSPHRASE_BYTES} bytes"
                )
            try:
                passphrase = data.decode().strip()
            except UnicodeDecodeError:
                raise NodeConfigError(f"passphrase-file {self.passphrase_file}: not UTF-8 text") from None
            if not passphrase:
                raise NodeConfigError(
                    f"passphrase-file {self.passphrase_file}: the file is empty; allowed: a file "
                    "holding the keystore's passphrase"
                )
            return passphrase
        value = os.environ.get(PASSPHRASE_ENV)
        if value is None:
            raise NodeConfigError(
                f"no passphrase: set passphrase-file in the node config, or ${PASSPHRASE_ENV}"
            )
        return value


CHAIN_WAIT = 120.0
"""Seconds ``seccl node watch`` waits for its chain-url to answer at all before it gives up: a
node that is still starting answers within them; a wrong URL never does."""

LINGER = 600.0
"""Seconds ``seccl node watch`` keeps answering its ClientApp once every check of the session is
done, for the server's last message (the final model), which may come after those checks."""


def watch(
    config: NodeConfig,
    *,
    interval: float = 2.0,
    log: Callable[[str], None] = print,
    chain_wait: float = CHAIN_WAIT,
    linger: float = LINGER,
) -> None:
    """``seccl node watch``: the participant's long-lived process. It answers the messages its
    ClientApp forwards (over the state directory's socket, from the moment it starts), and runs
    :meth:`ParticipantNode.watch_once` every ``interval`` seconds until every check of the session
    is done; then it answers for up to ``linger`` seconds more, until the server's final model.

    Until its chain answers and its session file exists it waits, checking every ``interval``
    seconds: the session file may well come later (the server writes it once every SuperNode is
    up), but a chain-url that has not answered once within ``chain_wait`` seconds is a
    :class:`ChainUnavailableError`. Once the chain has answered, an outage is waited out."""
    up_since: int | None = None
    parent = os.getppid()  # its SuperNode: when that ends, so does the watcher, even before a session
    give_up = time.monotonic() + chain_wait
    ready = threading.Event()
    built: list[ParticipantNode] = []

    def orphaned() -> bool:
        if os.getppid() == parent:
            return False
        log("the process that started this watcher has ended (its SuperNode): stopping")
        return True

    def handler(kind: str, node_id: int, body: bytes, header: dict[str, Any]) -> tuple[Fields, bytes]:
        if not ready.wait(RELAY_READY_WAIT):
            return {"error": "NotReady: the participant has not loaded its session yet"}, b""
        return built[0].relay(kind, node_id, body, header)

    with RelayServer(config.state_dir, handler, log):
        while True:
            if orphaned():
                return
            try:
                if up_since is None:
                    up_since = _chain_time(config.chain_url)
                node = ParticipantNode(config)
                break
            except (SessionFileError, ChainUnavailableError) as exc:
                if isinstance(exc, SessionFileError) and config.session_file.exists():
                    raise  # a session file it cannot accept: nothing to watch
                if up_since is None and time.monotonic() > give_up:
                    raise ChainUnavailableError(
                        f"chain-url {config.chain_url}: no Ethereum JSON-RPC node answered within "
                        f"{chain_wait:g} s; allowed: the URL of a running node (--chain-wait sets how "
                        "long to wait)"
                    ) from None
                log(f"watch: waiting for the session: {type(exc).__name__}: {exc}")  # not written yet
                time.sleep(interval)
        node.up_since = up_since
        built.append(node)
        ready.set()
        log(f"watching the session for {node.address} (state in {node.state_dir})")
        while not node.finished:
            if orphaned():
                return
            try:
                node.watch_once()
            except (OSError, ChainError) as exc:  # the node is unreachable for now: keep watching
                log(f"watch: {type(exc).__name__}: {exc}")
            time.sleep(interval)
        log("every check of the session is done")
        until = time.monotonic() + linger
        while not node.final_answered and time.monotonic() < until:
            if orphaned():
                return
            time.sleep(min(interval, 0.5))
        log("the session has ended for this participant")


RELAY_READY_WAIT = 120.0
"""Seconds a forwarded message waits for the participant to load its session (its process has
just started) before it is refused."""


def _chain_time(url: str) -> int:
    return int(RpcChain(url).connect().eth.get_block("latest")["timestamp"])


def hello_text(nonce: bytes, node_id: int) -> bytes:
    """What a participant signs to tell the server which Flower node it answers on: bound to this
    session (its nonce) and to the node, so the statement is worth nothing anywhere else."""
    return f"seccl-hello/0x{nonce.hex()}/{node_id}".encode()


def hello_signer(nonce: bytes, node_id: int, signature: bytes) -> str | None:
    """The address that signed :func:`hello_text`, or None for a malformed signature."""
    try:
        return str(Account.recover_message(encode_defunct(hello_text(nonce, node_id)), signature=signature))
    except (ValueError, TypeError, ValidationError, BadSignature):
        return None


class ParticipantNode:
    """One participant as it runs on its own machine: built once in its long-lived process, and
    rebuilt from disk (its state file) whenever that process restarts."""

    def __init__(self, config: NodeConfig):
        # One thread: the same bits as the simulation's training for the same seed and data.
        torch.set_num_threads(1)
        self.config = config
        self.agreed = SessionFile.read(config.session_file)
        session = self.agreed.session
        # Its own node must serve the session's chain: on another chain, the session's addresses
        # hold other code or none, which the checks below would blame on the contracts.
        chain_id = int(RpcChain(config.chain_url).connect().eth.chain_id)
        if chain_id != session.chain_id:
            raise NodeConfigError(
                f"chain-url {config.chain_url}: the node serves another chain than the session's: "
                f"chain id {chain_id}, expected {session.chain_id} (the session file "
                f"{config.session_file}'s); allowed: a node of the session's chain"
            )
        try:
            self.account = load_keystore(config.key_file, config.passphrase())
        except (OSError, ValueError) as exc:
            raise NodeConfigError(f"key-file {config.key_file}: cannot be opened: {exc}") from None
        if self.account.address not in session.participants:
            raise NodeConfigError(
                f"key-file {config.key_file}: {self.account.address} is not in the session's roster"
            )
        self.index = session.participants.index(self.account.address)
        self.state_dir = Path(config.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = read_participant_data(config.data, seed=self.agreed.seed)
        # Verifies the contracts, the roster, the phases and θ_0 against the chain before anything.
        self.participant = Participant(
            self.index,
            self.account,
            data,
            session,
            self.agreed.settings,
            RpcChain(config.chain_url),
            seed=self.agreed.seed,
        )
        # When this participant's watcher came up (chain time): it acts alone only in rounds that
        # opened after that, when it has been running all along (see watch_once).
        self.up_since: int | None = None
        self._done: set[tuple[int, str]] = set()
        self._seen: set[int] = set()  # rounds whose training request it answered
        self.final_answered = False  # the server's last message, the final model, was answered
        self._thread_lock = threading.Lock()  # its watch loop and its messages, one at a time
        self._load()

    @property
    def address(self) -> str:
        return self.account.address

    def hello(self, node_id: int) -> bytes:
        """The signed statement that this participant answers on Flower node ``node_id``."""
        signed = self.account.sign_message(encode_defunct(hello_text(self.agreed.session.nonce, node_id)))
        return bytes(signed.signature)

    # ─────────────── one message ───────────────

    def handle(self, request: Request) -> Reply:
        """Run the checks the chain says are due, answer ``request``, and keep everything on disk."""
        with self._locked(), RunArchive(self.state_dir / JOURNAL) as journal:
            self.participant.journal = journal
            if request.round > self.agreed.rounds:
                self.log(f"refused a request for round {request.round}: the session has {self.agreed.rounds}")
                return Reply()
            self._catch_up(request)
            reply = self.participant.handle(request)
            if isinstance(request, TrainRequest):
                self._seen.add(request.round)
            if isinstance(request, BallotReceipt):
                # The server says it relayed my ballot: the chain must say so too, or I submit it.
                self._check(request.round, "ballots")
            if isinstance(request, FinalModelRequest):
                self.final_answered = True
            self.log(f"round {request.round}: answered {type(request).__name__}")
            self._save()
            return reply

    def relay(self, kind: str, node_id: int, body: bytes, header: Mapping[str, Any]) -> tuple[Fields, bytes]:
        """One message its ClientApp forwarded (:mod:`seccl.deploy.relay`): a ``hello`` or a
        ``request``, decoded here; one it cannot decode is refused (``error``) and never reaches
        the participant's state."""
        entered = time.perf_counter()
        if kind == "hello":
            self.log(f"said hello on Flower node {node_id}")
            return {"address": self.address}, self.hello(node_id)
        if kind != "request":
            return {"error": f"MalformedMessageError: unknown message kind {shown(kind)}"}, b""
        try:
            decoded = decode_request(body)
        except ProtocolError as exc:
            self.log(f"refused a message: {type(exc).__name__}: {exc}")
            return {"error": f"{type(exc).__name__}: {exc}"}, b""
        if isinstance(decoded, TrainRequest):
            maybe_kill_node(decoded.round, "train")
        reply = self.handle(decoded)
        # Where a deployed round's time goes: the ClientApp process's start-up (Flower starts one
        # per message), this participant's own work; the rest of a round trip is Flower's.
        age = header.get("process-age")
        started = ""
        if isinstance(age, (int, float)):
            started = f"; its ClientApp process started {age:.2f} s before"
        self.log(
            f"round {decoded.round}: {type(decoded).__name__} answered in "
            f"{time.perf_counter() - entered:.2f} s{started}"
        )
        return {}, encode_reply(reply)

    def watch_once(self) -> None:
        """The checks the chain's clock has made due, whether or not the server asked anything.

        A participant cannot rely on the server to call on it: a silent server would otherwise
        keep it from posting its update, submitting its ballot, tallying a stalled election or
        accusing a missing model. Run every few seconds by ``seccl node watch`` beside the
        SuperNode, this acts a third of a phase before its deadline (time to train and post),
        and on an election or a model only once its deadline has passed, so an honest server,
        which acts at once, is never pre-empted.
        """
        with self._locked(), RunArchive(self.state_dir / JOURNAL) as journal:
            p = self.participant
            p.journal = journal
            current = min(p.board.current_round(), self.agreed.rounds)
            if current < 1:
                return
            for round_ in range(1, current):
                for phase in PHASES:
                    self._check(round_, phase)
            info, now, phases = p.board.round_info(current), p._now(), self.agreed.session.phases
            if self.up_since is not None and self.up_since > info.opened_at:
                # It came up after this round opened: the server may well have asked while it
                # was down, so it neither acts alone nor blames the server; it rejoins next round.
                for phase in ("updates", "ballots"):
                    if (current, phase) not in self._done and current not in self._seen:
                        self.log(f"round {current}: came up after it opened; sits it out ({phase})")
                        self._done.add((current, phase))
            n = self.agreed.session.n
            if now > info.update_deadline - phases.update // 3:
                self._check(current, "updates")
            if info.commitments_closed(n, now):
                # Reveal at once: nobody else holds the bytes, and the ballots wait for them.
                self._check(current, "updates")
                self._check(current, "reveals")
            if info.reveals_closed(n, now) and now > info.ballot_deadline - phases.ballot // 3:
                self._check(current, "ballots")
            if now > info.ballot_deadline:
                self._check(current, "election")
            if info.model_posted or now > info.model_deadline:
                self._check(current, "model")
            self._save()

    def _catch_up(self, request: Request) -> None:
        """Every check of a phase that ``request`` shows to be over, in order, once each.

        In the simulation the runtime calls them after every phase; here the next message is the
        first moment this process runs again, and the chain (never the request) decides what a
        check finds. A phase this participant missed (its machine was down) and that the chain
        has closed is recorded as missed, not blamed on the server.
        """
        if isinstance(request, TrainRequest):
            last = (request.round - 1, len(PHASES))
        elif isinstance(request, (RevealRequest, EvaluateRequest, BallotReceipt)):
            last = (request.round, 2)
        elif isinstance(request, FinalModelRequest):
            last = (request.round, len(PHASES))
        else:  # pragma: no cover - the union is closed
            raise TypeError(type(request).__name__)
        for round_ in range(1, last[0] + 1):
            for phase in PHASES[: last[1] if round_ == last[0] else len(PHASES)]:
                self._check(round_, phase)

    def _check(self, round_: int, phase: str) -> None:
        if (round_, phase) in self._done:
            return
        p = self.participant
        if phase in ("updates", "ballots") and round_ not in self._seen and p.board.current_round() > round_:
            self.log(f"round {round_}: missed the {phase} phase (this participant was not running)")
        elif phase == "updates":
            p.after_updates(round_)
        elif phase == "reveals":
            p.after_commitments(round_)
        elif phase == "ballots":
            p.after_ballots(round_)
        elif phase == "election":
            p.after_election(round_)
        elif not p.after_model(round_) and not self._overdue(round_):
            return  # the model is not on the board yet, nor late: check again later
        self._done.add((round_, phase))

    def _overdue(self, round_: int) -> bool:
        """Whether the model of ``round_`` missed its deadline (``after_model`` accused it)."""
        info = self.participant.board.round_info(round_)
        return bool(info.opened_at) and self.participant._now() > info.model_deadline

    @property
    def finished(self) -> bool:
        """Whether every check of every round of the session is done."""
        return all((r, phase) in self._done for r in range(1, self.agreed.rounds + 1) for phase in PHASES)

    # ─────────────── state on disk ───────────────

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One message at a time: two processes of this participant never interleave."""
        with self._thread_lock, open(self.state_dir / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._load()  # what the previous holder of the lock saved
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self) -> None:
        path = self.state_dir / STATE
        if not path.is_file():
            return
        # The participant's own private file (0600, written by this code): nothing from the
        # network is ever unpickled.
        saved = pickle.loads(path.read_bytes())
        for name in _KEPT:
            setattr(self.participant, name, saved["participant"][name])
        self._done, self._seen = set(saved["done"]), set(saved["seen"])

    def _save(self) -> None:
        p = self.participant
        saved = {
            "participant": {name: getattr(p, name) for name in _KEPT},
            "done": sorted(self._done),
            "seen": sorted(self._seen),
        }
        path = self.state_dir / STATE
        atomic_write_bytes(path, pickle.dumps(saved))
        os.chmod(path, 0o600)
        evidence = [e.to_dict() for e in p.evidence]
        atomic_write_bytes(self.state_dir / EVIDENCE, (json.dumps(evidence, indent=2) + "\n").encode())

    def log(self, line: str) -> None:
        with open(self.state_dir / LOG, "a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {self.address} {line}\n")
