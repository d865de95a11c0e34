"""The local channel between a participant's per-message ClientApp and its long-lived process.

Flower starts a fresh ClientApp process for every message. That process only forwards the bytes
it received, over a Unix domain socket in the participant's state directory, to the process that
holds the participant (``seccl node watch``: its key, data, chain connection and
:class:`~seccl.deploy.node.ParticipantNode`, built once), and returns the bytes it gets back. It
never decodes a request, so it imports nothing but the standard library here (no torch, no web3).

Who may talk on the channel: the socket file is made 0600 in the participant's state directory
(0700), and the long-lived process also checks that the peer runs as its own user
(``SO_PEERCRED``), so another local user can neither send requests nor read replies.

One exchange per connection, each side a frame: a 4-byte big-endian header length, the header (a
JSON object), an 8-byte big-endian body length, and the body. The ClientApp's header names the
``kind`` of the message (``hello`` or ``request``) and the Flower ``node-id``; the reply's header
carries ``fields`` (strings or integers the ClientApp puts beside the body in its reply's record:
``error`` for a refusal, ``address`` for a hello) or ``failed`` (the participant's code raised)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SOCKET = "node.sock"
"""The socket's name in the participant's state directory."""

MAX_HEADER = 64 * 1024
MAX_BODY = 512 * 1024 * 1024
"""The largest body either side accepts: above the wire format's own limit (256 MiB), which the
long-lived process checks when it decodes; this only bounds what is read before that."""

CONNECT_WAIT = 30.0
"""Seconds a ClientApp waits for the long-lived process to listen: a participant's process that is
still starting (importing torch, reading its data) listens within them."""

REPLY_WAIT = 900.0
"""Seconds a ClientApp waits for a reply: far above a round's training (seconds to a minute), yet
bounded, so that a wedged long-lived process cannot hold the SuperNode for ever (Flower runs one
message at a time)."""

READ_WAIT = 60.0
"""Seconds the long-lived process waits for a connected ClientApp to send its whole request."""

Fields = dict[str, str | int]
Handler = Callable[[str, int, bytes, dict[str, Any]], tuple[Fields, bytes]]


class RelayError(RuntimeError):
    """The exchange with the participant's long-lived process failed: it is not listening, it did
    not answer in time, or what it sent is not a frame."""


class RelayFailure(RuntimeError):
    """The participant's long-lived process answered that its own code failed on the message."""


def socket_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / SOCKET


@contextlib.contextmanager
def _short(path: Path) -> Iterator[str]:
    """An address for ``path`` that fits ``sun_path`` (108 bytes) however deep the state directory
    is: the socket's name under ``/proc/self/fd/N``, N an open descriptor of its directory."""
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


# ─────────────── frames ───────────────


def _send_frame(sock: socket.socket, header: dict[str, Any], body: bytes) -> None:
    head = json.dumps(header, separators=(",", ":")).encode()
    frame = struct.pack(">I", len(head)) + head + struct.pack(">Q", len(body))
    # One write when the body is small, and never a write of nothing: once the peer has the whole
    # frame it may answer and close, and a write after that (even of no bytes) fails with EPIPE.
    if len(body) <= 1 << 20:
        sock.sendall(frame + body)
    else:
        sock.sendall(frame)
        sock.sendall(body)


def _recv_exactly(sock: socket.socket, size: int, deadline: float) -> bytes:
    chunks, left = [], size
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RelayError("timed out")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except TimeoutError:
            raise RelayError("timed out") from None
        if not chunk:
            raise RelayError("the connection closed in the middle of a frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket, deadline: float) -> tuple[dict[str, Any], bytes]:
    (head_size,) = struct.unpack(">I", _recv_exactly(sock, 4, deadline))
    if head_size > MAX_HEADER:
        raise RelayError(f"a header of {head_size} bytes; at most {MAX_HEADER} accepted")
    try:
        header = json.loads(_recv_exactly(sock, head_size, deadline))
    except (ValueError, UnicodeDecodeError):
        raise RelayError("a header that is not JSON") from None
    if not isinstance(header, dict):
        raise RelayError(f"a header that is not a JSON object but {type(header).__name__}")
    (body_size,) = struct.unpack(">Q", _recv_exactly(sock, 8, deadline))
    if body_size > MAX_BODY:
        raise RelayError(f"a body of {body_size} bytes; at most {MAX_BODY} accepted")
    return header, _recv_exactly(sock, body_size, deadline)


# ─────────────── the ClientApp's side ───────────────


def forward(
    state_dir: str | os.PathLike[str],
    kind: str,
    node_id: int,
    body: bytes,
    *,
    extra: dict[str, Any] | None = None,
    connect_wait: float = CONNECT_WAIT,
    reply_wait: float = REPLY_WAIT,
) -> tuple[Fields, bytes]:
    """Hand one message to the participant's long-lived process and return its reply: the fields
    for the reply's record and the reply's bytes. :class:`RelayError` if the process does not
    listen within ``connect_wait`` seconds, does not answer within ``reply_wait`` more, or answers
    something that is not a reply; :class:`RelayFailure` if it says its code failed."""
    path = socket_path(state_dir)
    give_up = time.monotonic() + connect_wait
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _short(path) as address:
                sock.settimeout(max(1.0, connect_wait))
                sock.connect(address)
            break
        except OSError as exc:
            sock.close()
            # Not there yet, or a socket nobody listens on (the process is starting, or gone).
            waiting = exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN)
            if not waiting or time.monotonic() >= give_up:
                raise RelayError(
                    f"the participant's process does not listen on {path} ({exc.strerror or exc}); "
                    "is `seccl node watch` running with this state directory?"
                ) from None
            time.sleep(0.1)
    with sock:
        try:
            _send_frame(sock, {"kind": kind, "node-id": node_id, **(extra or {})}, body)
            header, reply = _recv_frame(sock, time.monotonic() + reply_wait)
        except RelayError as exc:
            raise RelayError(f"the participant's process on {path}: {exc}") from None
        except OSError as exc:
            raise RelayError(f"the participant's process on {path}: {exc.strerror or exc}") from None
    if "failed" in header:
        raise RelayFailure(str(header["failed"]))
    fields = header.get("fields")
    if not isinstance(fields, dict) or not all(
        isinstance(k, str) and k != "data" and isinstance(v, (str, int)) and not isinstance(v, bool)
        for k, v in fields.items()
    ):
        raise RelayError(f"the participant's process on {path} sent a reply without valid fields")
    return fields, reply


# ─────────────── the long-lived process's side ───────────────


class RelayServer:
    """Listens on the state directory's socket and answers each connection with ``handler(kind,
    node_id, body, header)`` in a thread of its own; ``close`` stops it and removes the socket."""

    def __init__(self, state_dir: str | os.PathLike[str], handler: Handler, log: Callable[[str], None]):
        self.state_dir = Path(state_dir)
        self.path = socket_path(self.state_dir)
        self.handler = handler
        self.log = log
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with _short(self.path) as address:
            self._clear_stale(address)
            previous = os.umask(0o177)  # the socket file is born 0600
            try:
                self._sock.bind(address)
            finally:
                os.umask(previous)
        os.chmod(self.path, 0o600)
        self._sock.listen(16)
        self._closed = threading.Event()
        self._busy = threading.Condition()
        self._in_flight = 0  # connections being answered: close() lets them finish
        self._thread = threading.Thread(target=self._accept, name="seccl-relay", daemon=True)
        self._thread.start()

    def _clear_stale(self, address: str) -> None:
        """Remove a socket left by a process of this participant that died, never a live one."""
        if not os.path.lexists(self.path):
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(2.0)
            probe.connect(address)
        except OSError:
            os.unlink(self.path)  # nobody listens: left behind
            return
        finally:
            probe.close()
        raise RelayError(f"another process already serves this participant on {self.path}")

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with self._busy:
                self._in_flight += 1
            threading.Thread(target=self._serve, args=(conn,), name="seccl-relay-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        finally:
            with self._busy:
                self._in_flight -= 1
                self._busy.notify_all()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
                if uid != os.getuid():
                    self.log(f"relay: refused a connection from uid {uid} (not this participant's user)")
                    return
                header, body = _recv_frame(conn, time.monotonic() + READ_WAIT)
                kind, node_id = header.get("kind"), header.get("node-id")
                if not isinstance(kind, str) or not isinstance(node_id, int):
                    raise RelayError("a header without a kind and a node-id")
                try:
                    fields, reply = self.handler(kind, node_id, body, header)
                    answer: dict[str, Any] = {"fields": fields}
                except Exception as exc:  # the participant's own failure, reported back
                    failure = f"{type(exc).__name__}: {exc}"
                    self.log(f"relay: the participant failed on a {kind} message: {failure}")
                    answer, reply = {"failed": failure[:1000]}, b""
                conn.settimeout(REPLY_WAIT)
                _send_frame(conn, answer, reply)
            except (RelayError, OSError, struct.error) as exc:
                self.log(f"relay: dropped a connection: {type(exc).__name__}: {exc}")

    def close(self, finish_within: float = 30.0) -> None:
        """Stop listening, and let the answers under way be sent (for up to ``finish_within``
        seconds): the last one, the final model's, is what ends a participant's session."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with self._busy:
            self._busy.wait_for(lambda: self._in_flight == 0, timeout=finish_within)

    def __enter__(self) -> RelayServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
