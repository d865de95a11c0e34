"""A participant's watcher acts on the chain's deadlines without being asked: against a server
that never contacts participant 0, participant 0 posts its own commitment, reveals its update and
submits its ballot before the phases close, and holds the server's silence as evidence; the others
read its update from the chain like everyone else's and find nothing wrong. Participants are
rebuilt from disk for every message (as if their processes restarted each time), and the watchers
are threads here (in a deployment, `seccl node watch` processes, which also answer the messages)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from seccl.chain.bulletin_board import Phases
from seccl.deploy import node as node_module
from seccl.deploy.local import LocalDeployment
from seccl.deploy.node import NodeConfig, ParticipantNode, watch
from seccl.deploy.server_run import DeployedServer, ServerConfig
from seccl.protocol.evidence import EvidenceKind
from tests.deploy.conftest import PER_PARTICIPANT, SETTINGS, N
from tests.deploy.test_node import FreshProcessTransport


def session_with_watchers(root: Path, server_attack: str | None, lose: set | None = None):
    """One round of a 3-participant session (short phases) whose participants are rebuilt from
    disk for every message and watched by threads; returns the round's record and the evidence."""
    deployment = LocalDeployment(
        root,
        participants=N,
        rounds=1,
        per_participant=PER_PARTICIPANT,
        settings=SETTINGS,
        phases=Phases(update=24, ballot=18, model=60, reveal=18),
    )
    stop = threading.Event()

    def watcher(i: int) -> None:
        node = ParticipantNode(deployment.node_config(i))
        while not stop.is_set() and not node.finished:
            node.watch_once()
            stop.wait(1.0)

    with deployment:
        deployment.start_chain()
        deployment.prepare()
        deployment.open_session()
        threads = [threading.Thread(target=watcher, args=(i,)) for i in range(N)]
        for thread in threads:
            thread.start()
        try:
            config = ServerConfig(
                session_file=deployment.root / "session.json",
                key_file=deployment.server_dir / "key.json",
                passphrase_file=deployment.server_dir / "passphrase",
                chain_url=deployment.anvil.url,
                out_dir=deployment.server_dir / "records",
                server_attack=server_attack,
                attack_target=0,
            )
            transport = FreshProcessTransport([deployment.node_config(i) for i in range(N)], lose=lose)
            [outcome] = DeployedServer(config, transport=transport, log=lambda _line: None).run()
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    evidence = {
        i: json.loads((deployment.party_dir(i) / "state" / "evidence.json").read_text()) for i in range(N)
    }
    return outcome, evidence


@pytest.mark.long
def test_a_silent_server_cannot_keep_a_participant_out(tmp_path: Path) -> None:
    outcome, evidence = session_with_watchers(tmp_path / "consortium", "silence")

    assert outcome["ballots"] == N  # participant 0's ballot counted although it was never asked
    silent = [e for e in evidence[0] if e["kind"] == EvidenceKind.SERVER_SILENT.value]
    details = " | ".join(e["detail"] for e in silent)
    assert "never asked for this round's update" in details
    assert "posted it itself" in details
    assert "submitted it itself" in details
    assert all(e["tx_id"] for e in silent if "itself" in e["detail"])  # each act is on the chain
    assert outcome["candidates"] and evidence[1] == [] and evidence[2] == []  # nothing to withhold now


def test_an_update_that_reached_the_board_late_reaches_every_voter(tmp_path: Path) -> None:
    """Participant 0's answer to the training request is lost on the way (a straggler): the honest
    server skips it, its watcher posts the commitment itself and reveals the update, so every voter
    reads it from the chain and nobody accuses the honest server."""
    outcome, evidence = session_with_watchers(tmp_path / "consortium", None, lose={("TrainRequest", 1, 0)})

    assert outcome["ballots"] == N
    assert evidence[1] == [] and evidence[2] == []
    assert [e["detail"] for e in evidence[0]] == [
        "the server did not post this commitment; the participant posted it itself"
    ]


def test_a_watcher_stops_when_its_supernode_ends_before_any_session_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen in CI: the deployment was SIGKILLed before it wrote the session file, so the watcher
    # waited for the session (and the chain) for ever, orphaned. Its parent's end must stop it
    # in that wait too. The parent's death is the one thing simulated: getppid() changes.
    config = NodeConfig(
        key_file=tmp_path / "key.json",
        data=tmp_path / "data.npz",
        chain_url="http://127.0.0.1:9",  # nobody listens: the chain is "not up yet"
        session_file=tmp_path / "session.json",  # not written yet
        state_dir=tmp_path / "state",
    )
    parents = iter([4242, 4242])
    monkeypatch.setattr(node_module.os, "getppid", lambda: next(parents, 1))
    said: list[str] = []

    # In a thread, so that a watcher that does not stop fails the test instead of hanging it.
    watcher = threading.Thread(target=watch, args=(config,), kwargs={"interval": 0.01, "log": said.append})
    watcher.daemon = True
    watcher.start()
    watcher.join(timeout=30)

    assert not watcher.is_alive(), f"the watcher kept waiting: {said[-1:]}"
    assert any("waiting for the session" in line for line in said)
    assert said[-1] == "the process that started this watcher has ended (its SuperNode): stopping"
