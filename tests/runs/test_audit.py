"""`seccl audit` re-checks a run from its chain and stored messages alone: an honest run audits
clean, and each tampered artifact is named precisely."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from seccl.cli.main import main
from seccl.protocol.archive import RunArchive
from seccl.protocol.evidence import Evidence, EvidenceKind
from seccl.protocol.verification import Status, Verdict
from seccl.runs.audit import RoundAudit, audit_session
from seccl.runs.audit_report import AuditReport, FindingCheck, Section
from seccl.runs.durability import RunRecorder
from seccl.runtime.simulation import Simulation
from tests.sessions import N, attack, simulate


def run_with_archive(data, tmp_path: Path, server=None) -> tuple[Simulation, RunArchive]:
    archive = RunArchive(tmp_path / "messages.sqlite")
    sim, _ = simulate(data, server, recorder=RunRecorder(archive, model_dir=tmp_path / "models"))
    return sim, archive


def audit(sim: Simulation, archive: RunArchive):
    return audit_session(
        sim.session, sim.board_reader, sim.consensus_reader, archive, aggregation=sim.settings.aggregation
    )


def problems(report) -> list[str]:
    return [p for r in report for p in r.problems]


def test_an_honest_run_audits_clean_and_leaves_loadable_models(data, tmp_path: Path) -> None:
    sim, archive = run_with_archive(data, tmp_path)

    report = audit(sim, archive)

    assert problems(report) == []
    assert [r.round for r in report] == [0, 1, 2]
    assert report[1].checked == {"updates": N, "ballots": N, "elections": 1, "models": 1}
    final = torch.load(tmp_path / "models" / "final.pt")
    assert set(final) == set(sim.participants[0]._model.state_dict())


def test_a_byte_flipped_in_a_stored_update_is_named(data, tmp_path: Path) -> None:
    sim, archive = run_with_archive(data, tmp_path)
    victim = archive.of_round(1)[0]  # sorted by kind: an update
    db = sqlite3.connect(archive.path)
    data_bytes = bytearray(victim.signed.data)
    data_bytes[-1] ^= 0x01
    with db:
        db.execute(
            "UPDATE messages SET data = ? WHERE digest = ?", (bytes(data_bytes), victim.signed.digest())
        )

    found = problems(audit(sim, archive))

    index = sim.session.participants.index(victim.author)
    assert any(f"participant {index}'s update: the stored bytes hash to" in p for p in found), found


def test_a_record_deleted_from_the_store_is_named(data, tmp_path: Path) -> None:
    sim, archive = run_with_archive(data, tmp_path)
    ballot = sim.consensus_reader.ballots_of(2)[0]
    with sqlite3.connect(archive.path) as db:
        db.execute("DELETE FROM messages WHERE digest = ?", (ballot.digest,))

    found = problems(audit(sim, archive))

    index = sim.session.participants.index(ballot.voter)
    assert found == [
        f"participant {index}'s counted ballot 0x{ballot.digest.hex()[:16]}… "
        "is on the chain but missing from the store"
    ]


def test_a_stored_tx_id_that_is_not_the_chains_is_named(data, tmp_path: Path) -> None:
    sim, archive = run_with_archive(data, tmp_path)
    victim = archive.of_round(2)[0]  # an update
    forged = "0x" + "ab" * 32
    with sqlite3.connect(archive.path) as db:
        db.execute("UPDATE messages SET tx_id = ? WHERE digest = ?", (forged, victim.signed.digest()))

    found = problems(audit(sim, archive))

    index = sim.session.participants.index(victim.author)
    assert found == [
        f"participant {index}'s update is stored with Tx-ID {forged}, "
        f"but the chain recorded it in {victim.tx_id}"
    ]


def test_a_run_of_a_malicious_server_fails_the_audit_on_its_model(data, tmp_path: Path) -> None:
    sim, archive = run_with_archive(data, tmp_path, attack("aggregate-non-candidates"))

    found = problems(audit(sim, archive))

    assert any("θ_1 on the board" in p and "is not the aggregate" in p for p in found), found


@pytest.mark.anvil
def test_seccl_audit_passes_a_run_and_fails_it_once_a_model_record_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["run", "-n", str(N), "-r", "2", "-l", "0.5", "--local-epochs", "1", "--per-participant", "100"]
    assert main([*argv, "--chain", "anvil", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["audit", str(run)]) == 0
    assert "AUDIT PASSED" in capsys.readouterr().out

    with sqlite3.connect(run / "messages.sqlite") as db:
        db.execute("DELETE FROM messages WHERE kind = 2 AND round = 2")  # θ_2 removed from the store
    assert main(["audit", str(run)]) == 1
    out = capsys.readouterr().out
    assert "θ_2" in out and "missing from the store" in out and "AUDIT FAILED" in out


@pytest.mark.anvil
def test_seccl_audit_names_a_replaced_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = ["run", "-n", str(N), "-r", "2", "-l", "0.5", "--local-epochs", "1", "--per-participant", "100"]
    assert main([*argv, "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["audit", str(run)]) == 0
    clean = capsys.readouterr().out
    assert "round 1: ok" in clean and "1 models, 1 model files)" in clean  # round-0001.pt
    assert "1 models, 2 model files)" in clean  # round 2: round-0002.pt and final.pt

    models = run / "models"
    (models / "final.pt").write_bytes((models / "round-0001.pt").read_bytes())  # an older model

    assert main(["audit", str(run)]) == 1
    out = capsys.readouterr().out
    assert "final.pt holds a model hashing to" in out and "not θ_2 on the board" in out
    assert "AUDIT FAILED: 1 discrepancies" in out


def test_seccl_audit_of_a_run_without_a_store_says_so(tmp_path: Path, capsys) -> None:
    (tmp_path / "evidence.json").write_text('{"evidence": []}')
    (tmp_path / "chain.json").write_text('{"backend": "anvil"}')

    assert main(["audit", str(tmp_path)]) == 2
    assert "stored no messages" in capsys.readouterr().err


@pytest.mark.anvil
def test_an_edited_chain_state_file_is_refused_before_any_check(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    argv = ["run", "-n", str(N), "-r", "1", "-l", "0.5", "--local-epochs", "1", "--per-participant", "100"]
    assert main([*argv, "--chain", "anvil", "--out", str(run), "--no-progress"]) == 0
    pins = json.loads((run / "chain.json").read_text())
    assert pins["genesis_hash"].startswith("0x") and pins["deployment_blocks"] and pins["last_block"]["hash"]
    run_json = json.loads((run / "run.json").read_text())
    assert run_json["complete"] is True and run_json["rounds_completed"] == 1
    state = run / "anvil-state.json"
    state.write_text(state.read_text() + " ")  # one byte more: the pinned SHA-256 no longer matches
    capsys.readouterr()

    assert main(["audit", str(run)]) == 2
    assert "changed after the run" in capsys.readouterr().err


def test_what_cannot_be_audited_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["audit", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere does not exist" in err

    (tmp_path / "deployment" / "server" / "records").mkdir(parents=True)
    assert main(["audit", str(tmp_path / "deployment")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "audit its server's records" in err

    state = tmp_path / "participant-0000" / "state"
    state.mkdir(parents=True)
    (state / "journal.sqlite").write_bytes(b"")
    (state / "evidence.json").write_text("[]")
    assert main(["audit", str(state)]) == 2  # no session file beside it, none given
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--session" in err


def finding(kind: EvidenceKind, round_: int = 1, finder_index: int = 1) -> Evidence:
    return Evidence(
        round_, kind, f"0x{finder_index:040x}", "0x" + "ee" * 20, None, None, None, "", {}, finder_index
    )


def test_the_verdict_line_says_clean_consistent_incomplete_or_inconsistent() -> None:
    deviation = "θ_1 on the board is not the aggregate of the elected candidates' stored updates"
    bad_model = RoundAudit(
        1, problems=[deviation], explainable=[(deviation, EvidenceKind.MODEL_NOT_AGGREGATED)]
    )
    caught = FindingCheck(
        finding(EvidenceKind.MODEL_NOT_AGGREGATED), Verdict(Status.CONFIRMED, "proved"), "confirmed"
    )
    false = FindingCheck(finding(EvidenceKind.MODEL_MISMATCH, 2, 3), Verdict(Status.REFUTED, "no"), "refuted")

    assert (
        AuditReport([RoundAudit(0), RoundAudit(1)], [], rounds_done=1, rounds_planned=1).verdict() == "clean"
    )
    # The server's deviation, caught and recorded: a correct record of a bad server.
    recorded = AuditReport([RoundAudit(0), bad_model], [caught], rounds_done=1, rounds_planned=1)
    assert recorded.ok and recorded.verdict() == "consistent, with 1 confirmed finding against the server"
    assert any(
        line.startswith("  - caught (a confirmed model-not-aggregated finding") for line in recorded.lines()
    )
    # The same deviation with the finding gone from the record: inconsistent, and named.
    dropped = AuditReport([RoundAudit(0), bad_model], [], rounds_done=1, rounds_planned=1)
    assert not dropped.ok
    assert dropped.verdict() == f"inconsistent (1 discrepancy, in round 1: {deviation})"
    # A false accusation recorded as refuted is a consistent record, against its finder.
    assert AuditReport([RoundAudit(0)], [false], rounds_done=2, rounds_planned=2).verdict() == (
        "consistent, with 1 refuted finding (false, by participant 3)"
    )
    assert AuditReport([RoundAudit(0)], [caught], rounds_done=1, rounds_planned=3).verdict() == (
        "incomplete (1 of 3 rounds), with 1 confirmed finding against the server"
    )
    section = Section("metrics.json")
    section.same("round 1: elected", [1, 2], [2, 1])
    lines = AuditReport([RoundAudit(0)], [], [section], rounds_done=1, rounds_planned=1).lines()
    assert lines[-2] == "AUDIT FAILED: 1 discrepancies, 0 refuted findings"
    assert lines[-1] == (
        "inconsistent (1 discrepancy, in metrics.json: round 1: elected: the record says [1, 2]; "
        "the chain says [2, 1])"
    )


class _Blocks:
    """A chain of three blocks whose block 0 is answered as ``answered`` while block 1 builds on
    ``genesis``: what an anvil that reloaded a saved chain (a resumed run's) serves."""

    def __init__(self, genesis: str, answered: str):
        self.genesis, self.answered = genesis, answered
        self.block_number = 2

    def get_block(self, which: object) -> dict[str, object]:
        if which == 0:
            return {"hash": bytes.fromhex(self.answered[2:]), "number": 0}
        if which == 1:
            return {"hash": b"\x01" * 32, "parentHash": bytes.fromhex(self.genesis[2:]), "number": 1}
        if which in (self.genesis, self.answered):
            return {"hash": bytes.fromhex(str(which)[2:]), "number": 0}
        raise ValueError(f"no block {which}")


def test_a_genesis_hash_must_be_a_block_0_of_the_chain_whichever_anvil_answers() -> None:
    from types import SimpleNamespace

    from seccl.runs.audit_chain import check_genesis

    genesis, remade = "0x" + "aa" * 32, "0x" + "bb" * 32
    w3 = SimpleNamespace(eth=_Blocks(genesis, answered=remade))
    for recorded in (genesis, remade):
        section = Section("chain.json")
        check_genesis(section, recorded, w3)  # type: ignore[arg-type]
        assert section.problems == [] and section.checked == {"block hashes": 1}
    doctored = Section("chain.json")
    check_genesis(doctored, "0x" + "ab" * 32, w3)  # type: ignore[arg-type]
    assert doctored.problems == [
        f"the genesis block's hash (genesis_hash): the record says '0x{'ab' * 32}'; "
        f"the chain says '{genesis}'"
    ]
