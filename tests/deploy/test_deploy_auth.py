"""The transport of a deployment: the SuperLink serves TLS with the certificate made for the run,
on 127.0.0.1 only, and accepts only the SuperNodes whose public keys its operator registered. A
SuperNode with a key nobody registered never gets a node id: the SuperLink refuses to activate it
and it exits, while a registered one beside it joins. Real processes, every one stopped by pid."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from seccl.chain.anvil import die_with_parent, free_port
from seccl.deploy.local import LocalDeployment, _stop_group
from tests.deploy.processes import MARKER, marked, new_marker
from tests.processes import wait_for

REGISTERED, STRANGER = 0, 1
WITHIN = 180.0  # generous: Flower's processes take seconds each to start on a loaded machine


def listening(port: int) -> set[str]:
    """The local addresses on which some socket listens on TCP ``port`` (from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1 as /proc/net shows them


def test_only_registered_supernodes_join_over_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = new_marker()
    monkeypatch.setenv(MARKER, marker)
    root = tmp_path / "deployment"
    deployment = LocalDeployment(root, participants=2, rounds=1)
    deployment.make_credentials()  # the transport only: no chain, no data, no session
    credentials = deployment.credentials
    assert credentials is not None
    for secret in (
        root / "tls" / "ca.key",
        credentials.private_key,
        deployment.node_key(STRANGER).private_key,
    ):
        assert secret.stat().st_mode & 0o777 == 0o600, secret

    supernodes: dict[int, subprocess.Popen[bytes]] = {}
    logs = {i: root / f"participant-{i:04d}" / "supernode.log" for i in (REGISTERED, STRANGER)}
    with deployment:
        try:
            deployment.start_superlink()
            assert listening(deployment.port) <= LOOPBACK and listening(deployment.port)

            # TLS: the SuperLink proves itself with the run's certificate, for 127.0.0.1; a client
            # that does not trust the run's CA refuses it.
            trusting = ssl.create_default_context(cafile=str(credentials.ca_certificate))
            address = ("127.0.0.1", deployment.port)
            with (
                socket.create_connection(address, timeout=30) as raw,
                trusting.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
            with (
                socket.create_connection(address, timeout=30) as raw,
                pytest.raises(ssl.SSLCertVerificationError),
            ):
                ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")

            node_id = deployment.register_supernode(REGISTERED)  # STRANGER's key is never registered
            assert node_id > 0
            ports = {i: free_port() for i in (REGISTERED, STRANGER)}
            for i in (REGISTERED, STRANGER):
                command = ["flower-supernode", *deployment.supernode_flags(i)]
                command += ["--superlink", f"127.0.0.1:{deployment.port}"]
                command += ["--host", "127.0.0.1", "--port", str(ports[i])]
                logs[i].parent.mkdir(parents=True, exist_ok=True)
                with open(logs[i], "ab") as log:
                    supernodes[i] = subprocess.Popen(
                        command,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=deployment.env,
                        start_new_session=True,
                        preexec_fn=die_with_parent,
                    )

            # The stranger is refused: it exits on its own, having never had a node id.
            code = supernodes[STRANGER].wait(timeout=WITHIN)
            stranger_log = logs[STRANGER].read_text()
            assert code != 0, stranger_log
            assert "[code: 2004] Failed to activate SuperNode." in stranger_log
            assert "SuperNode ID:" not in stranger_log
            link_log = (root / "superlink.log").read_text()
            assert "[/v1/fleet/activate-node][ApiError:2004]" in link_log
            assert "No SuperNode found with the given public key." in link_log

            # The registered SuperNode beside it joins under the id its registration gave it.
            joined = wait_for(lambda: f"SuperNode ID: {node_id}" in logs[REGISTERED].read_text(), WITHIN)
            assert joined, logs[REGISTERED].read_text()
            assert supernodes[REGISTERED].poll() is None
            assert listening(ports[REGISTERED]) <= LOOPBACK  # its Runtime API, for its own apps
            listed = subprocess.run(
                ["flwr", "supernode", "ls", "local", "--format", "json"],
                env=deployment.env,
                capture_output=True,
                text=True,
                timeout=WITHIN,
            )
            assert listed.returncode == 0, listed.stdout + listed.stderr
            nodes = json.loads(listed.stdout)["nodes"]
            assert [(int(n["node-id"]), n["status"]) for n in nodes] == [(node_id, "online")]
        finally:
            for process in supernodes.values():
                _stop_group(process)
    assert wait_for(lambda: not marked(marker), timeout=30), f"left running: {marked(marker)}"
