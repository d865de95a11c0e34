"""Starts and stops a local anvil node from the npm package, on 127.0.0.1, with persisted state."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from web3 import Web3

from seccl.chain.backends import RpcChain
from seccl.chain.errors import ChainUnavailableError


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def find_anvil() -> Path:
    """The anvil binary: ``$SECCL_ANVIL``, the project's ``node_modules``, or the PATH."""
    candidates = [os.environ.get("SECCL_ANVIL"), _repo_root() / "node_modules" / ".bin" / "anvil"]
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


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM to anvil when its parent dies (even by
    SIGKILL), so a killed run never leaves anvil running and rewriting its state file."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the context manager still stops it
        pass


PR_SET_PDEATHSIG = 1


class AnvilNode:
    """A local anvil, started on a free loopback port; its state is dumped to ``state_file``.

    Use as a context manager; :meth:`stop` ends only the process this object started.
    """

    def __init__(self, state_file: Path, *, port: int | None = None, startup_timeout: float = 30.0):
        self.state_file = Path(state_file)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> AnvilNode:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.state_file.with_suffix(".log"), "wb")  # noqa: SIM115 - lives with the node
        self._process = subprocess.Popen(
            [
                str(find_anvil()),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--state",
                str(self.state_file),
                "--state-interval",
                "2",
                # anvil otherwise writes every historical state it evicts from memory under
                # ~/.foundry/anvil/tmp and never removes them: measured, 79 GB after a day of test
                # runs, which filled the disk. Recent states (all that a revert replay at the
                # parent block needs) stay in memory.
                "--max-persisted-states",
                "0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ChainUnavailableError(f"anvil exited with {self._process.returncode}; see {log.name}")
            try:
                if Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 1})).is_connected():
                    return self
            except Exception:  # not listening yet
                pass
            time.sleep(0.1)
        self.stop()
        raise ChainUnavailableError(f"anvil did not answer at {self.url} within {self._startup_timeout}s")

    def backend(self) -> RpcChain:
        return RpcChain(self.url, name="anvil")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self) -> None:
        if self._process is None:
            return
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
