"""Evidence convinces a third party who trusts neither side: a real finding is confirmed from the
server's own signatures and the chain, a fabricated one is refuted, on-chain and off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seccl.chain.bulletin_board import MessageKind
from seccl.chain.errors import BulletinAccusationRefuted
from seccl.cli.main import main
from seccl.learning.model import build_model, get_flat_params
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.evidence import Evidence, EvidenceKind
from seccl.protocol.messages import ModelMessage
from seccl.protocol.statements import Delivery, Receipt
from seccl.protocol.verification import Status
from seccl.runtime.simulation import Simulation
from tests.sessions import TARGET, simulate


@pytest.fixture(scope="module")
def honest(data) -> Simulation:
    sim, result = simulate(data, rounds=1)
    assert result.evidence == []
    return sim


def accusation(sim: Simulation, kind: EvidenceKind, subject: str, proof: dict) -> Evidence:
    finder = sim.participants[0]
    return Evidence(1, kind, finder.address, subject, None, None, None, "fabricated", proof, 0)


def genuine_delivery(sim: Simulation) -> Delivery:
    """What the honest server signs when it hands participant 0 the model of round 1 (the server
    delivers models only: updates are revealed on the board)."""
    return sim.server.deliver_model(0, 1)[1]


def test_a_delivery_mismatch_signed_by_the_accuser_itself_is_refuted(honest) -> None:
    finder = honest.participants[0]
    genuine = genuine_delivery(honest)
    forged = Delivery.sign(
        finder.account,
        honest.session.domain,
        1,
        MessageKind.MODEL,
        finder.address,
        genuine.authors,
        (b"\x99" * 32,),
    )
    evidence = accusation(
        honest,
        EvidenceKind.MODEL_MISMATCH,
        genuine.authors[0],
        {"delivery": forged.to_dict(), "position": 0},
    )

    verdict = honest.verify(evidence)

    assert verdict.status is Status.REFUTED and "not signed by the session's server" in verdict.reason


def test_a_genuine_honest_delivery_cited_as_a_mismatch_is_refuted_on_and_off_chain(honest) -> None:
    genuine = genuine_delivery(honest)
    evidence = accusation(
        honest,
        EvidenceKind.MODEL_MISMATCH,
        genuine.authors[0],
        {"delivery": genuine.to_dict(), "position": 0},
    )

    assert honest.verify(evidence).status is Status.REFUTED
    with pytest.raises(BulletinAccusationRefuted):
        honest.participants[0].board.accuse_delivery(
            1, MessageKind.MODEL, genuine.recipient, genuine.authors, genuine.digests, 0, genuine.signature
        )
    assert honest.board_reader.caught_count() == 0


def test_an_altered_digest_in_a_genuine_delivery_breaks_the_servers_signature(honest) -> None:
    genuine = genuine_delivery(honest).to_dict()
    genuine["digests"][0] = "0x" + "77" * 32
    evidence = accusation(
        honest,
        EvidenceKind.MODEL_MISMATCH,
        genuine["authors"][0],
        {"delivery": genuine, "position": 0},
    )

    assert honest.verify(evidence).status is Status.REFUTED


def test_a_true_receipt_cited_as_unrecorded_is_refuted(honest) -> None:
    author = honest.session.participants[0]
    receipt: Receipt = honest.server.receipts[(1, author)]
    evidence = accusation(honest, EvidenceKind.UPDATE_NOT_RECORDED, author, {"receipt": receipt.to_dict()})

    verdict = honest.verify(evidence)

    assert verdict.status is Status.REFUTED and receipt.tx_id in verdict.reason


def test_an_honest_aggregate_accused_of_not_being_one_is_refuted(honest) -> None:
    session = honest.session
    previous = ModelMessage(0, session.server, get_flat_params(build_model(0)))
    candidates = honest.consensus_reader.elected_of(1)
    revealed = honest.board_reader.revealed_updates(1, honest.first_block)
    updates = [SignedMessage(revealed[session.participants[c]].message, b"") for c in candidates]
    proof = {
        "previous_model": SignedMessage(previous.to_bytes(), b"").to_dict(),
        "updates": [u.to_dict() for u in updates],
    }
    evidence = accusation(honest, EvidenceKind.MODEL_NOT_AGGREGATED, session.server, proof)

    verdict = honest.verify(evidence)
    assert verdict.status is Status.REFUTED and "exactly the aggregate" in verdict.reason
    # Leaving out one candidate's update does not help the accuser either.
    proof["updates"] = proof["updates"][:1]
    assert honest.verify(evidence).status is Status.REFUTED


def test_a_model_accused_of_missing_while_on_the_board_is_refuted(honest) -> None:
    evidence = accusation(honest, EvidenceKind.MODEL_NOT_POSTED, honest.session.server, {})

    assert honest.verify(evidence).status is Status.REFUTED


@pytest.mark.anvil
def test_seccl_verify_evidence_reopens_the_runs_chain_confirms_real_and_refutes_forged_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = [
        "run",
        "-n",
        "4",
        "-r",
        "1",
        "-l",
        "0.5",
        "--local-epochs",
        "1",
        "--per-participant",
        "100",
        "--server-attack",
        "tamper-all",
        "--attack-target",
        str(TARGET),
        "--chain",
        "anvil",
        "--out",
        str(run),
        "--no-progress",
        "--allow-evidence",
    ]
    assert main(argv) == 0
    findings = json.loads((run / "evidence.json").read_text())["evidence"]
    assert findings and {f["verdict"]["status"] for f in findings} == {"confirmed"}
    capsys.readouterr()

    assert main(["verify-evidence", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.count("CONFIRMED") == len(findings) and "REFUTED" not in out

    forged = json.loads((run / "evidence.json").read_text())
    forged["evidence"][0]["proof"]["delivery"]["digests"][0] = "0x" + "55" * 32
    (run / "evidence.json").write_text(json.dumps(forged))
    assert main(["verify-evidence", str(run / "evidence.json")]) == 1
    assert "REFUTED" in capsys.readouterr().out


def test_seccl_verify_evidence_says_why_when_the_chain_did_not_outlive_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    (run).mkdir()
    (run / "evidence.json").write_text(json.dumps({"evidence": []}))
    (run / "chain.json").write_text(json.dumps({"backend": "embedded"}))

    assert main(["verify-evidence", str(run)]) == 2
    assert "embedded EVM ends with its run" in capsys.readouterr().err
