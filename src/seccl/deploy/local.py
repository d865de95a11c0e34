"""``seccl deploy local``: a whole consortium on this machine, each party its own process, on
127.0.0.1 only: an anvil, a Flower SuperLink and one SuperNode per participant (each with its
own key, data, chain URL and state directory), a session run through ``flwr run``, and every
process it started stopped, by pid, however the run ends.

Flower's transport is secured as across machines: TLS with a CA and a SuperLink certificate made
for the run (every SuperNode and ``flwr run`` verify the SuperLink against that CA), and SuperNode
authentication (each SuperNode signs with its own key; the SuperLink accepts only the public keys
registered with ``flwr supernode register``). ``insecure=True`` turns both off, for debugging."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from seccl.chain.anvil import AnvilNode, die_with_parent, free_port
from seccl.chain.bulletin_board import Phases
from seccl.deploy.certificates import NodeKey, ServerCredentials, make_server_credentials, new_node_key
from seccl.deploy.node import NodeConfig
from seccl.deploy.patience import PHASE_TIMEOUT
from seccl.deploy.relay import socket_path
from seccl.deploy.session_file import SessionFile
from seccl.deploy.setup import create_session, new_key, split_data
from seccl.roles.settings import LearningSettings

APP_PYPROJECT = """\
# The Flower app of a SecCL deployment (written by `seccl deploy`): the roles are the seccl
# package's own, installed on every machine; this file only names them for Flower.
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "seccl-app"
version = "1.0.0"
description = "SecCL: secure collaborative learning audited by a blockchain"
license = "MIT"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "seccl"

[tool.flwr.app.components]
serverapp = "seccl.runs.deployment:app"
clientapp = "seccl.deploy.client_app:app"

# The server's run config; `flwr run . NAME --run-config FILE` fills it in.
[tool.flwr.app.config]
session = ""
server-key = ""
passphrase-file = ""
chain-url = ""
out-dir = ""
phase-timeout = 120.0
join-timeout = 120.0
test-data = ""
server-attack = ""
attack-target = 0
dataset = ""
per-participant = 0
candidate-fraction = 0.0
"""


# A SuperNode's attempts to join, 5 s apart. A SuperNode that dies without a word (SIGKILL) stays
# "online" at the SuperLink for up to two heartbeats (60 s), and the SuperLink refuses to activate
# a node that is online, so the SuperNode that comes back with the same key is refused until then.
SUPERNODE_ATTEMPTS = 24
SUPERNODE_RETRY_SECONDS = 5


GRACE_SECONDS = 10
"""How long a process group's shell waits for its processes to end on SIGTERM before it SIGKILLs
the whole group (see :func:`group_guard`)."""


def group_guard(children: str) -> str:
    """The trap of a shell that leads a process group and starts, in the background, the processes
    whose pids it keeps in the variables named by ``children`` (space-separated). On SIGTERM (from
    :meth:`LocalDeployment.stop`, or from Linux when this process dies, even by SIGKILL: see
    ``die_with_parent``) the shell passes SIGTERM to its group, waits for those processes to end,
    at most :data:`GRACE_SECONDS`, then SIGKILLs the whole group: whatever they started and left
    behind (a SuperExec's apps), and whatever ignores SIGTERM or hangs in its own exit, goes too."""
    waited = " ".join(f"${name}" for name in children.split())
    handler = f'trap "" TERM; kill 0; (sleep {GRACE_SECONDS}; kill -9 0) & wait {waited}; kill -9 0'
    return f"trap {shlex.quote(handler)} TERM"


SUPEREXEC_POLL_INTERVAL = "0.1"
"""Seconds between a SuperExec's looks for a task (Flower's default: 1 s, once per message)."""


class DeployError(RuntimeError):
    """A process of the local deployment failed to start or the session did not finish."""


def write_app(app_dir: Path) -> Path:
    """The Flower app directory ``flwr run`` ships to the SuperLink."""
    app_dir = Path(app_dir)
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "pyproject.toml").write_text(APP_PYPROJECT)
    return app_dir


def flower_environment(flwr_home: Path) -> dict[str, str]:
    """Flower's processes: no telemetry, no update check, nothing installed at run time, its
    files under ``flwr_home``, this venv's commands (the SuperNode starts its SuperExec by name),
    and a SuperExec that looks for a new message's task every 0.1 s instead of every second
    (``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``, read by Flower's ``flower-superexec``)."""
    env = dict(os.environ)
    env.update(
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_DISABLE_UPDATE_CHECK="1",
        FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
        FLWR_HOME=str(flwr_home),
        FLWR_SUPEREXEC_TASK_POLL_INTERVAL=SUPEREXEC_POLL_INTERVAL,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@dataclass
class LocalDeployment:
    """One consortium on 127.0.0.1 under ``root``: ``prepare`` makes every party's files and the
    session, ``start`` the processes, ``run`` the session; use as a context manager."""

    root: Path
    participants: int
    rounds: int
    seed: int = 0
    dataset: str = "mnist"
    per_participant: int | None = None
    candidate_fraction: float = 0.2
    settings: LearningSettings = field(default_factory=LearningSettings)
    phases: Phases = field(default_factory=lambda: Phases(update=120, ballot=120, model=120, reveal=120))
    phase_timeout: float = PHASE_TIMEOUT
    server_attack: str | None = None
    attack_target: int = 0
    faults: dict[int, str] = field(default_factory=dict)  # participant -> SECCL_KILL_NODE_AT
    insecure: bool = False  # plain HTTP and no SuperNode authentication: for debugging only

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.port = free_port()
        self.anvil: AnvilNode | None = None
        self._link: subprocess.Popen[bytes] | None = None
        self._nodes: dict[int, subprocess.Popen[bytes]] = {}
        self.env = flower_environment(self.root / "flwr-home")
        self.roster: list[str] = []
        self.credentials: ServerCredentials | None = None
        self.node_ids: dict[int, int] = {}  # participant -> its node id, once registered

    # ─────────────── files ───────────────

    def party_dir(self, i: int) -> Path:
        return self.root / f"participant-{i:04d}"

    @property
    def server_dir(self) -> Path:
        return self.root / "server"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    def node_key(self, i: int) -> NodeKey:
        """Participant ``i``'s SuperNode authentication key pair (OpenSSH format)."""
        private = self.party_dir(i) / "flwr-node-key"
        return NodeKey(private_key=private, public_key=private.with_name(private.name + ".pub"))

    def make_credentials(self) -> None:
        """The run's CA and SuperLink certificate, and each participant's SuperNode key pair
        (private keys 0600); nothing in insecure mode."""
        if self.insecure:
            return
        self.credentials = make_server_credentials(self.tls_dir, hosts=("127.0.0.1", "localhost"))
        for i in range(self.participants):
            new_node_key(self.node_key(i).private_key, comment=f"participant-{i:04d}")

    def node_config(self, i: int) -> NodeConfig:
        home = self.party_dir(i)
        assert self.anvil is not None
        return NodeConfig(
            key_file=home / "key.json",
            data=home / "data.npz",
            chain_url=self.anvil.url,
            session_file=self.root / "session.json",
            state_dir=home / "state",
            passphrase_file=home / "passphrase",
        )

    def prepare(self) -> list[str]:
        """Every party's key and private data; returns the participants' addresses (the roster)."""
        self.roster = []
        for i in range(self.participants):
            home = self.party_dir(i)
            self.roster.append(new_key(home / "key.json", home / "passphrase"))
        new_key(self.server_dir / "key.json", self.server_dir / "passphrase")
        data = self.root / "data"
        split_data(
            dataset=self.dataset,
            participants=self.participants,
            out_dir=data,
            seed=self.seed,
            per_participant=self.per_participant,
        )
        for i in range(self.participants):
            os.replace(data / f"participant-{i:04d}.npz", self.party_dir(i) / "data.npz")
        self.make_credentials()
        return self.roster

    def open_session(self) -> SessionFile:
        """Deploy the session for the roster and write the session file. Round 1 opens now, so
        this comes last, right before the run: the first phase's clock starts here."""
        assert self.anvil is not None, "start the chain first"
        return create_session(
            chain_url=self.anvil.url,
            server_key=self.server_dir / "key.json",
            passphrase_file=self.server_dir / "passphrase",
            participants=self.roster,
            out=self.root / "session.json",
            seed=self.seed,
            rounds=self.rounds,
            candidate_fraction=self.candidate_fraction,
            settings=self.settings,
            phases=self.phases,
            fund_parties=True,
        )

    # ─────────────── processes ───────────────

    def start_chain(self) -> None:
        self.anvil = AnvilNode(self.root / "chain" / "anvil-state.json", block_time=1)
        self.anvil.start()

    def superlink_flags(self) -> list[str]:
        """TLS with the run's certificate, and only registered SuperNodes (or ``--insecure``)."""
        if self.insecure:
            return ["--insecure"]
        if self.credentials is None:
            raise DeployError("no certificates: prepare the deployment first")
        return [
            "--ssl-ca-certfile",
            str(self.credentials.ca_certificate),
            "--ssl-certfile",
            str(self.credentials.certificate),
            "--ssl-keyfile",
            str(self.credentials.private_key),
            "--enable-supernode-auth",
        ]

    def supernode_flags(self, i: int) -> list[str]:
        """Verify the SuperLink against the run's CA, and sign with participant ``i``'s key."""
        if self.insecure:
            return ["--insecure"]
        if self.credentials is None:
            raise DeployError("no certificates: prepare the deployment first")
        return [
            "--root-certificates",
            str(self.credentials.ca_certificate),
            "--auth-supernode-private-key",
            str(self.node_key(i).private_key),
        ]

    def write_flower_config(self) -> Path:
        """``flwr``'s connection to the SuperLink (``FLWR_HOME/config.toml``): its address and
        the CA that signed its certificate."""
        (self.root / "flwr-home").mkdir(parents=True, exist_ok=True)
        if self.insecure:
            security = "insecure = true\n"
        elif self.credentials is None:
            raise DeployError("no certificates: prepare the deployment first")
        else:
            security = f"root-certificates = {json.dumps(str(self.credentials.ca_certificate))}\n"
        config = (
            '[superlink]\ndefault = "local"\n\n'
            f'[superlink.local]\naddress = "127.0.0.1:{self.port}"\n{security}'
        )
        path = self.root / "flwr-home" / "config.toml"
        path.write_text(config)
        return path

    def superexec_flags(self) -> list[str]:
        """The ServerApp's SuperExec verifies the SuperLink against the run's CA (or ``--insecure``)."""
        if self.insecure:
            return ["--insecure"]
        if self.credentials is None:
            raise DeployError("no certificates: prepare the deployment first")
        return ["--root-certificates", str(self.credentials.ca_certificate)]

    def start_superlink(self) -> None:
        self.write_flower_config()
        address = f"127.0.0.1:{self.port}"
        link = ["flower-superlink", *self.superlink_flags(), "--host", "127.0.0.1", "--port", str(self.port)]
        link += ["--database", str(self.root / "superlink.db"), "--isolation", "process"]
        # The SuperExec that starts the ServerApp is ours, not the SuperLink's: in its default
        # isolation ("subprocess") the SuperLink starts it in a session of its own, out of reach
        # of this process group, and it and the `flwr-serverapp` it starts then end only if they
        # notice the SuperLink is gone. A ServerApp blocked on a pull from the dead SuperLink (its
        # retries never give up) does not (`flwr-serverapp` outlived a SIGKILL of `seccl deploy
        # local`). Started here, both belong to the SuperLink's process group.
        superexec = ["flower-superexec", *self.superexec_flags(), "--runtime-api-address", address]
        script = (
            f"{group_guard('link superexec')}; "
            f"{shlex.join(link)} & link=$!; "
            f'{shlex.join(superexec)} --parent-pid "$link" & superexec=$!; '
            'wait "$link"'
        )
        self._link = self._spawn(["sh", "-c", script], self.root / "superlink.log", self.env)
        self._wait_port(self.port, "the SuperLink", self._link)

    def register_supernode(self, i: int) -> int:
        """Register participant ``i``'s public key with the SuperLink (what its operator does with
        the key a participant gives it: ``flwr supernode register KEY.pub``); returns the node id
        the SuperLink assigned. Nothing to do in insecure mode (a SuperNode registers itself)."""
        if self.insecure:
            return 0
        command = ["flwr", "supernode", "register", str(self.node_key(i).public_key), "local"]
        command += ["--format", "json"]
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=120, preexec_fn=die_with_parent
        )
        with open(self.root / "flwr-register.log", "a") as log:
            log.write(f"$ {shlex.join(command)}\n{done.stdout}{done.stderr}\n")
        try:
            node_id = int(json.loads(done.stdout)["node-id"])
        except (ValueError, KeyError, TypeError):
            node_id = 0
        if done.returncode != 0 or not node_id:
            raise DeployError(
                f"the SuperLink did not register participant {i}'s SuperNode key; "
                f"see {self.root / 'flwr-register.log'}"
            )
        self.node_ids[i] = node_id
        return node_id

    def start_supernode(self, i: int, *, fault: str | None = None) -> subprocess.Popen[bytes]:
        env = dict(self.env)
        env.pop("SECCL_KILL_NODE_AT", None)
        if fault:
            env["SECCL_KILL_NODE_AT"] = fault
        command = [
            "flower-supernode",
            *self.supernode_flags(i),
            "--superlink",
            f"127.0.0.1:{self.port}",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--node-config",
            self.node_config(i).to_node_config(),
        ]
        # The participant's own long-lived process (`seccl node watch`: it holds the participant
        # and answers the messages its per-message ClientApp forwards, and acts on the chain's
        # deadlines without being asked) shares its SuperNode's process group (one shell starts
        # both): it lives and dies with the participant's "machine". The shell restarts a
        # SuperNode that could not join (one that comes back after a crash is refused for up to a
        # minute: see SUPERNODE_ATTEMPTS), and on SIGTERM ends its whole process group (see
        # group_guard).
        watch = [
            str(Path(sys.executable).parent / "seccl"),
            "node",
            "watch",
            *self.node_config(i).to_options(),
        ]
        watch_log = shlex.quote(str(self.party_dir(i) / "watch.log"))
        script = (
            f"{group_guard('watch node')}; "
            f"{shlex.join(watch)} >> {watch_log} 2>&1 & watch=$!; "
            f'attempt=1; while :; do {shlex.join(command)} & node=$!; wait "$node"; code=$?; '
            f'if [ "$code" -eq 0 ] || [ "$attempt" -ge {SUPERNODE_ATTEMPTS} ]; then exit "$code"; fi; '
            f"attempt=$((attempt + 1)); sleep {SUPERNODE_RETRY_SECONDS} & wait $!; done"
        )
        process = self._spawn(["sh", "-c", script], self.party_dir(i) / "supernode.log", env)
        self._nodes[i] = process
        return process

    def _spawn(self, command: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            # Its own process group: stopping it stops what it started (a SuperExec, the apps);
            # and it dies with this process even if this one is SIGKILLed (Flower's SuperExec and
            # apps watch their parent's pid, and so does a participant's watcher). Linux counts the
            # thread that started it as its parent: start processes from a thread that outlives them.
            return subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def _wait_port(
        self, port: int, what: str, process: subprocess.Popen[bytes], within: float = 30.0
    ) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DeployError(f"{what} exited with {process.returncode}; see its log under {self.root}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise DeployError(f"{what} did not listen on 127.0.0.1:{port} within {within:.0f} s")

    def start(self) -> None:
        """The chain, the parties' files, the SuperLink and every SuperNode (the session file
        they are configured with is written by :meth:`run`, which opens the session)."""
        self.start_chain()
        self.prepare()
        self.start_superlink()
        for i in range(self.participants):
            self.register_supernode(i)
        for i in range(self.participants):
            self.start_supernode(i, fault=self.faults.get(i))
        for i in range(self.participants):
            self.wait_participant(i)

    def wait_participant(self, i: int, within: float = 180.0) -> None:
        """Wait until participant ``i``'s own process (``seccl node watch``) listens for its
        ClientApp: then it has loaded its code and met its chain, before the session opens (a
        watcher that comes up after round 1 opened sits that round's deadlines out)."""
        sock = socket_path(self.node_config(i).state_dir)
        deadline = time.monotonic() + within
        while not sock.exists():
            process = self._nodes[i]
            if process.poll() is not None:
                raise DeployError(f"participant {i}'s SuperNode exited; see {self.party_dir(i)}")
            if time.monotonic() > deadline:
                raise DeployError(
                    f"participant {i}'s process did not listen on {sock} within {within:.0f} s; "
                    f"see {self.party_dir(i) / 'watch.log'}"
                )
            time.sleep(0.2)

    def run(self, timeout: float = 3600.0) -> dict[str, object]:
        """Open the session and run it through ``flwr run``; returns the server's run record."""
        self.open_session()
        app = write_app(self.root / "app")
        run_config = {
            "session": str(self.root / "session.json"),
            "server-key": str(self.server_dir / "key.json"),
            "passphrase-file": str(self.server_dir / "passphrase"),
            "chain-url": self.anvil.url if self.anvil else "",
            "out-dir": str(self.server_dir / "records"),
            "phase-timeout": float(self.phase_timeout),
            "join-timeout": 120.0,
            "test-data": str(self.root / "data" / "test.npz"),
            "server-attack": self.server_attack or "",
            "attack-target": int(self.attack_target),
            # What the records say of the data and l (config.toml, metrics.json): the chain fixes
            # N, M and the seed, not these.
            "dataset": self.dataset,
            "per-participant": int(self.per_participant or 0),
            "candidate-fraction": float(self.candidate_fraction),
        }
        config_file = self.root / "server-run-config.toml"
        config_file.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in run_config.items()))
        with open(self.root / "flwr-run.log", "ab") as log:
            flwr = subprocess.Popen(
                ["flwr", "run", str(app), "local", "--stream", "--run-config", str(config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
            try:
                flwr.wait(timeout=timeout)
            finally:
                _stop_group(flwr)
        record_path = self.server_dir / "records" / "run.json"
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        if not record.get("complete"):
            raise DeployError(
                f"the session did not finish; see {self.root / 'flwr-run.log'} and {record_path}"
            )
        return record

    def pids(self) -> list[int]:
        """Every process this deployment started and still holds."""
        held = [p for p in (self._link, *self._nodes.values()) if p is not None]
        return [p.pid for p in held] + ([self.anvil.pid] if self.anvil and self.anvil.pid else [])

    def stop(self) -> None:
        for process in [*self._nodes.values(), self._link]:
            if process is not None:
                _stop_group(process)
        self._nodes.clear()
        self._link = None
        if self.anvil is not None:
            self.anvil.stop()

    def __enter__(self) -> LocalDeployment:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _stop_group(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    """End ``process`` and everything in its process group; SIGKILL what outlives 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # A SuperExec or an app that outlived the group's leader still belongs to the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
