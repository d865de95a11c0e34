"""Starts and stops a local anvil node from the npm package, on 127.0.0.1, with its chain saved
atomically to a state file that a later node reopens."""

from __future__ import annotations

import binascii
import contextlib
import ctypes
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from web3 import Web3

from seccl.chain.backends import ChainBackend, EmbeddedChain, RpcChain
from seccl.chain.errors import ChainUnavailableError
from seccl.files import atomic_write_bytes


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def find_anvil() -> Path:
    """The anvil binary: ``$SECCL_ANVIL``, the project's ``node_modules``, or the PATH.

    In ``node_modules`` the platform package's binary itself, not the ``.bin/anvil`` node
    launcher that spawns it: the launcher would be one more process, and anvil a grandchild
    that the die-with-parent signal does not reach.
    """
    modules = _repo_root() / "node_modules"
    platform_binaries = sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil"))
    candidates = [os.environ.get("SECCL_ANVIL"), *platform_binaries, modules / ".bin" / "anvil"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise ChainUnavailableError(
        "anvil not found: run `npm ci` in the repository (it installs @foundry-rs/anvil) "
        "or set SECCL_ANVIL to the binary"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM to the child when its parent (the
    thread that started it) dies, even by SIGKILL, so a killed run never leaves anvil running and
    rewriting its state file, nor a deployment's SuperLink or SuperNodes."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the context manager still stops it
        pass


PR_SET_PDEATHSIG = 1


class AnvilNode:
    """A local anvil on a free loopback port, whose chain lives in ``state_file``.

    An existing ``state_file`` is loaded at start (blocks, transactions, receipts and state, so a
    finished run's Tx-IDs resolve again). The chain is written back only by :meth:`save`, as a
    whole and atomically, and on a clean :meth:`stop`: anvil's own ``--state`` dump rewrites the
    file in place on a timer, so a run killed mid-write could leave half a chain, or a chain
    that no record of the run matches. Use as a context manager; :meth:`stop` ends only the
    process this object started.
    """

    def __init__(
        self,
        state_file: Path | None,
        *,
        port: int | None = None,
        startup_timeout: float = 30.0,
        save_on_stop: bool = True,
        block_time: int | None = None,
        hardfork: str | None = None,
        chain_id: int | None = None,
    ):
        self.state_file = Path(state_file) if state_file is not None else None
        self._port_was_chosen = port is None
        self._retries = 0
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.save_on_stop = save_on_stop
        self.block_time = block_time
        # anvil's defaults (its latest hardfork, chain id 31337) unless given: for tests of a node
        # that is not what SecCL needs, as a ganache is ("shanghai", 1337).
        self.hardfork = hardfork
        self.chain_id = chain_id
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> AnvilNode:
        command = [
            str(find_anvil()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            # anvil otherwise writes every historical state it evicts from memory under
            # ~/.foundry/anvil/tmp and never removes them: measured, 79 GB after a day of test
            # runs, which filled the disk. Recent states (all that a revert replay at the
            # parent block needs) stay in memory.
            "--max-persisted-states",
            "0",
        ]
        if self.block_time is not None:
            # A block every block_time seconds besides one per transaction: the chain's clock
            # moves on while nobody transacts, as on any public chain, so a phase deadline passes
            # in real time for every party watching it (a deployment's parties wait for real).
            command += ["--block-time", str(self.block_time), "--mixed-mining"]
        if self.hardfork is not None:
            command += ["--hardfork", self.hardfork]
        if self.chain_id is not None:
            command += ["--chain-id", str(self.chain_id)]
        loaded = self.state_file is not None and self.state_file.is_file()
        if loaded:
            assert self.state_file is not None
            command += ["--load-state", str(self.state_file)]
        log_path = self.state_file.with_suffix(".log") if self.state_file else Path(os.devnull)
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 - lives with the node
        self._process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                if self._port_was_chosen and self._retries < 3 and _port_taken(log_path):
                    # Another process took the free port between our choice and anvil's bind (a
                    # parallel test, say): choose again rather than talk to someone else's node.
                    self._retries += 1
                    self.port = free_port()
                    self.url = f"http://127.0.0.1:{self.port}"
                    log.close()
                    return self.start()
                raise ChainUnavailableError(f"anvil exited with {self._process.returncode}; see {log_path}")
            try:
                w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 1}))
                if w3.is_connected():
                    time.sleep(0.2)  # an answer from a node that is not ours: ours exits at once
                    if self._process.poll() is not None:
                        continue
                    if loaded:
                        _continue_clock(w3)
                    return self
            except Exception:  # not listening yet
                pass
            time.sleep(0.1)
        self.stop()
        raise ChainUnavailableError(f"anvil did not answer at {self.url} within {self._startup_timeout}s")

    def save(self) -> None:
        """Write the whole chain to ``state_file`` atomically (a crash leaves the last save whole)."""
        if self.state_file is None or self._process is None:
            return
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 60}))
        answer = w3.provider.make_request("anvil_dumpState", [])  # type: ignore[arg-type]
        if "error" in answer:
            raise ChainUnavailableError(f"anvil could not dump its state: {answer['error']}")
        dumped = binascii.unhexlify(str(answer["result"]).removeprefix("0x"))
        # anvil hands back gzipped JSON; the file holds the JSON itself, which `anvil
        # --load-state` reads and anyone can inspect.
        state = gzip.decompress(dumped) if dumped[:2] == b"\x1f\x8b" else dumped
        json.loads(state)  # refuse to replace a good chain with something that is not one
        atomic_write_bytes(self.state_file, state)

    def backend(self) -> RpcChain:
        return RpcChain(self.url, name="anvil", saver=self.save if self.state_file is not None else None)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self) -> None:
        """Save the chain (if ``save_on_stop``) and end the node."""
        if self._process is None:
            return
        try:
            if self.save_on_stop and self._process.poll() is None:
                self.save()
        finally:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _port_taken(log_path: Path) -> bool:
    """Whether anvil's log says its port was in use."""
    try:
        return "Address already in use" in log_path.read_text(errors="replace")[-2000:]
    except OSError:
        return False


def _continue_clock(w3: Web3) -> None:
    """After a load, anvil stamps new blocks with the wall clock. Set its clock to the loaded
    chain's last block instead, so the chain's time goes on where it stopped: ahead of the wall
    clock when a simulation moved it forward, and, after a pause (a run stopped tonight and
    resumed tomorrow), not hours later, which would close every phase left open at the stop
    (the phases are an hour of chain time) and turn the pause into the server's silence."""
    latest = int(w3.eth.get_block("latest")["timestamp"])
    w3.provider.make_request("evm_setTime", [latest + 1])  # type: ignore[arg-type]


@contextlib.contextmanager
def open_backend(chain: str, state_dir: Path) -> Iterator[ChainBackend]:
    """The chain a run uses: ``embedded``, ``anvil`` (started and stopped here), or a URL."""
    if chain == "embedded":
        yield EmbeddedChain()
    elif chain == "anvil":
        with AnvilNode(state_dir / "anvil-state.json") as node:
            yield node.backend()
    elif chain.startswith(("http://", "https://")):
        yield RpcChain(chain)
    else:
        raise ValueError(f"chain must be 'embedded', 'anvil' or an http(s) JSON-RPC URL, got {chain!r}")
