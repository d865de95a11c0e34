"""The per-message ClientApp is thin: it imports neither torch nor web3, forwards the bytes it got
to the participant's long-lived process over the state directory's socket, and, when that process
is not there, hung, or says something that is not a reply, answers with a typed refusal within a
bounded time instead of waiting or failing."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flwr.app import Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from seccl.deploy import client_app, relay
from seccl.deploy.client_app import app, payload, payload_bytes, payload_record

NODE = 4242


@pytest.fixture(autouse=True)
def in_a_task() -> Iterator[None]:
    """A ClientApp process knows its run, node and task: Message() reads them from TaskIdentity."""
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 7, NODE, 1
    try:
        yield
    finally:
        TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


def context(state_dir: Path | str) -> Context:
    config = {"state-dir": str(state_dir)}
    return Context(run_id=7, node_id=NODE, node_config=config, state=RecordDict(), run_config={})


def message(kind: str, data: bytes = b"") -> Message:
    return Message(payload(data), dst_node_id=NODE, message_type=f"query.{kind}")


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded waits of a fraction of a second, so an absent or hung process is found out at once."""
    forward = relay.forward

    def hurried(*args, **kwargs):
        return forward(*args, **{**kwargs, "connect_wait": 0.3, "reply_wait": 1.0})

    monkeypatch.setattr(relay, "forward", hurried)


def test_the_clientapp_module_imports_neither_torch_nor_web3() -> None:
    # A fresh interpreter, as Flower starts one for every message.
    heavy = ("torch", "web3", "eth_account", "seccl.deploy.node", "seccl.deploy.wire", "seccl.roles")
    code = (
        "import sys, seccl.deploy.client_app\n"
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules) or 'none')\n"
        "print(seccl.deploy.client_app.__file__)"
    )
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    loaded, where = done.stdout.split("\n")[:2]
    assert loaded == "none"
    assert Path(where) == Path(client_app.__file__)  # this tree's module, not another install's


@pytest.mark.usefixtures("quick")
@pytest.mark.parametrize("kind", ["hello", "request"])
def test_without_the_long_lived_process_a_message_is_refused_in_bounded_time(tmp_path: Path, kind) -> None:
    started = time.monotonic()
    reply = app(message=message(kind, b'{"type":"train"}'), context=context(tmp_path / "state"))

    assert time.monotonic() - started < 10
    assert not reply.has_error()  # a refusal, not a failed ClientApp: the SuperNode carries on
    record = payload_record(reply)
    assert payload_bytes(record) == b""
    assert record["error"].startswith("RelayError: the participant's process does not listen on")
    assert "seccl node watch" in record["error"]


@pytest.mark.usefixtures("quick")
def test_a_socket_nobody_listens_on_is_refused_too(tmp_path: Path) -> None:
    """A long-lived process that died leaves its socket file behind."""
    state = tmp_path / "state"
    state.mkdir()
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(state / relay.SOCKET))
    left.close()

    record = payload_record(app(message=message("request", b"x"), context=context(state)))
    assert "Connection refused" in record["error"]


@pytest.mark.usefixtures("quick")
def test_a_hung_long_lived_process_is_not_waited_for_without_bound(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(state / relay.SOCKET))
    listener.listen(1)  # accepts, never answers
    try:
        started = time.monotonic()
        record = payload_record(app(message=message("request", b"x"), context=context(state)))
    finally:
        listener.close()
    assert time.monotonic() - started < 10
    assert record["error"].endswith("timed out")


def test_without_a_state_dir_in_the_node_config_a_message_is_refused(tmp_path: Path) -> None:
    ctx = Context(run_id=7, node_id=NODE, node_config={}, state=RecordDict(), run_config={})
    record = payload_record(app(message=message("hello"), context=ctx))
    assert "names no state-dir" in record["error"]


def test_the_clientapp_forwards_bytes_and_returns_what_the_process_answers(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seen: list[tuple[str, int, bytes]] = []

    def handler(kind: str, node_id: int, body: bytes, header: dict) -> tuple[relay.Fields, bytes]:
        seen.append((kind, node_id, body))
        if kind == "hello":
            return {"address": "0xabc"}, b"signature"
        if body == b"boom":
            raise ValueError("the participant's own code failed")
        return {}, body.upper()

    with relay.RelayServer(state, handler, log=lambda _line: None) as server:
        # Only this user may connect: the socket 0600 in a 0700 directory.
        assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
        hello = payload_record(app(message=message("hello"), context=context(state)))
        answered = payload_record(app(message=message("request", b"any bytes"), context=context(state)))
        # The participant's own failure is raised, and Flower's flwr-clientapp answers it with an
        # error reply naming it, as when the participant ran in the ClientApp itself.
        with pytest.raises(relay.RelayFailure, match="the participant's own code failed"):
            app(message=message("request", b"boom"), context=context(state))
    assert (payload_bytes(hello), hello["address"]) == (b"signature", "0xabc")
    assert payload_bytes(answered) == b"ANY BYTES" and "error" not in answered
    assert seen == [("hello", NODE, b""), ("request", NODE, b"any bytes"), ("request", NODE, b"boom")]
    assert not server.path.exists()  # closed: its socket is gone


def test_a_second_process_for_the_same_participant_is_refused(tmp_path: Path) -> None:
    def handler(*_args) -> tuple[relay.Fields, bytes]:
        return {}, b""

    with (
        relay.RelayServer(tmp_path / "state", handler, log=lambda _line: None),
        pytest.raises(relay.RelayError, match="another process already serves"),
    ):
        relay.RelayServer(tmp_path / "state", handler, log=lambda _line: None)


def test_a_deep_state_directory_still_gets_a_socket(tmp_path: Path) -> None:
    """A Unix socket's path holds at most 107 bytes; a state directory may be deeper."""
    state = tmp_path / ("d" * 100) / ("e" * 100) / "state"
    done = threading.Event()

    def handler(_kind: str, _node: int, body: bytes, _header: dict) -> tuple[relay.Fields, bytes]:
        done.set()
        return {}, body

    with relay.RelayServer(state, handler, log=lambda _line: None):
        assert relay.forward(state, "request", NODE, b"deep") == ({}, b"deep")
    assert done.is_set()


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


@pytest.mark.parametrize("body", [b"", b"x" * 1000])
def test_a_small_frame_is_one_write(body: bytes) -> None:
    """Regression: a hello (no body) was sent as the frame, then a write of nothing; under load the
    long-lived process had read the whole frame, answered and closed in between, and the write of
    nothing failed with EPIPE, so the hello was refused."""
    sock = Recorder()
    relay._send_frame(sock, {"kind": "hello"}, body)  # type: ignore[arg-type]
    assert len(sock.writes) == 1 and sock.writes[0].endswith(len(body).to_bytes(8, "big") + body)


def test_closing_lets_the_answer_under_way_be_sent(tmp_path: Path) -> None:
    """Regression: the participant's process ended as soon as it had handled the final model, and
    the reply, not yet sent, was lost with the process ("the connection closed in the middle of a
    frame"). ``close`` returns only once the answer under way is sent."""
    state = tmp_path / "state"
    handling = threading.Event()
    times: dict[str, float] = {}

    def handler(_kind: str, _node: int, body: bytes, _header: dict) -> tuple[relay.Fields, bytes]:
        handling.set()
        time.sleep(1.0)  # still answering when the process decides to end
        times["answered"] = time.monotonic()
        return {}, body

    def close() -> None:
        handling.wait(10)
        server.close()
        times["closed"] = time.monotonic()

    server = relay.RelayServer(state, handler, log=lambda _line: None)
    closer = threading.Thread(target=close)
    closer.start()
    try:
        assert relay.forward(state, "request", NODE, b"final", reply_wait=10) == ({}, b"final")
    finally:
        closer.join()
    assert times["closed"] >= times["answered"]
