"""A deployment under attack and under failure, on real processes: a malicious server hands
participant 0 altered models (signed for), and participant 2's SuperNode is killed in the middle of
round 1 and comes back. Participant 0 records verifiable evidence in its own file and files it on
chain; round 1 completes without the dead participant, which is not elected; nothing the
others sent is lost; the participant that came back rejoins in round 2; nothing is left running."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from web3 import Web3

from seccl.chain.backends import RpcChain
from seccl.chain.bulletin_board import BulletinBoardClient, MessageKind, Phases
from seccl.chain.consensus import ConsensusClient
from seccl.deploy.local import LocalDeployment
from seccl.deploy.session_file import SessionFile
from seccl.deploy.verify import verify_node_evidence
from seccl.protocol.archive import RunArchive
from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.verification import Status
from tests.deploy.conftest import PER_PARTICIPANT, SETTINGS, N
from tests.deploy.processes import MARKER, marked, new_marker
from tests.processes import wait_for

DEAD = 2


@pytest.mark.long
def test_tampering_is_caught_and_a_dead_supernode_loses_nothing(tmp_path: Path, monkeypatch) -> None:
    marker = new_marker()
    monkeypatch.setenv(MARKER, marker)
    root = tmp_path / "deployment"
    deployment = LocalDeployment(
        root,
        participants=N,
        rounds=2,
        per_participant=PER_PARTICIPANT,
        settings=SETTINGS,
        # Round 1 waits for its deadlines (a participant is missing), so its phases are short,
        # yet long enough on a loaded machine: its clock starts when the session is deployed,
        # before Flower's processes start (~45 s to the first hello) and answer (~25 s a round
        # trip), and the server waits for the dead participant the later of the phase timeout
        # and half the commitment phase before its deadline (at a load of 7 to 11, 120 s was once
        # too little).
        phases=Phases(update=150, ballot=60, model=120, reveal=60),
        phase_timeout=40,
        server_attack="tamper-one",
        attack_target=0,
        faults={DEAD: "1:train"},  # its machine dies on round 1's training request
    )
    with deployment:
        deployment.start()
        victim = deployment._nodes[DEAD]

        done = threading.Event()

        def come_back() -> None:
            victim.wait()
            deployment.start_supernode(DEAD)
            done.wait()  # the SuperNode dies with the thread that started it: keep this one

        helper = threading.Thread(target=come_back, daemon=True)
        helper.start()
        record = deployment.run(timeout=900)
        agreed = SessionFile.read(root / "session.json")
        w3 = Web3(Web3.HTTPProvider(deployment.anvil.url))
        board = BulletinBoardClient(w3, agreed.session.board)
        consensus = ConsensusClient(w3, agreed.session.consensus)
        updates_1 = board.updates_of(1)
        voted_1 = [consensus.has_voted(1, a) for a in agreed.session.participants]
        updates_2 = board.updates_of(2)
        # A third party checks participant 1's findings against the chain alone.
        evidence_file = root / "participant-0000" / "state" / "evidence.json"
        verdicts = [v for _, v in verify_node_evidence(evidence_file, agreed, RpcChain(deployment.anvil.url))]
        pids = deployment.pids()

    done.set()
    helper.join()
    first, second = record["rounds"]
    # Round 1 completed without the dead participant, which is not elected.
    assert {d["index"] for d in first["dropouts"]} == {DEAD}
    # Its reason says how long it was waited for and why (the phase-timeout, or the chain's
    # commitment phase, whichever was later when round 1's requests went out).
    assert first["dropouts"][0]["reason"].startswith("no answer within ")
    assert ": waited " in first["dropouts"][0]["reason"]
    assert DEAD not in first["candidates"]
    assert first["ballots"] == N - 1
    # Nothing the others sent is lost: on the chain, and in the server's store.
    assert [d is not None for d in updates_1] == [True, True, False]
    assert voted_1 == [True, True, False]
    with RunArchive(root / "server" / "records" / "messages.sqlite") as archive:
        stored = archive.of_round(1)
        assert sorted((m.kind, m.author) for m in stored if m.kind != MessageKind.MODEL) == sorted(
            (kind, agreed.session.participants[i])
            for i in (0, 1)
            for kind in (MessageKind.UPDATE, MessageKind.EVALUATION)
        )
    # The participant that came back rejoined in round 2.
    assert second["dropouts"] == [] and second["ballots"] == N
    assert all(d is not None for d in updates_2)
    # The tampering: participant 0, handed altered models, holds the proof.
    evidence = {
        i: json.loads((root / f"participant-{i:04d}" / "state" / "evidence.json").read_text())
        for i in range(N)
    }
    # A finding for each model it was handed: θ_0 and θ_1 with the training requests, θ_2 at the end.
    assert [(e["round"], e["kind"]) for e in evidence[0]] == [
        (r, EvidenceKind.MODEL_MISMATCH.value) for r in (1, 2, 2)
    ]
    assert all(e["proof"]["delivery"]["recipient"] == agreed.session.participants[0] for e in evidence[0])
    assert [v.status for v in verdicts] == [Status.CONFIRMED] * 3, verdicts
    assert evidence[1] == [] and evidence[DEAD] == []  # missing a round is not blamed on the server
    log = (root / f"participant-{DEAD:04d}" / "state" / "node.log").read_text()
    assert "round 1: came up after it opened; sits it out (updates)" in log
    # Every process the deployment started is gone.
    assert pids
    assert wait_for(lambda: not marked(marker), timeout=15), f"left running: {marked(marker)}"
