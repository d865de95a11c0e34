"""`seccl audit` against doctored copies of real run directories: each of more than 25 kinds of
doctoring (a transaction's gas, status or sender, a dropped transaction, a block hash, the tie
seed, the roster's order, an election's order, a score, a finding dropped or its verdict flipped,
a stored message, a model file, …) is caught, exit 1, and named; the untouched copies audit as
clean, as consistent with the server's caught tampering, and as incomplete when interrupted.

The runs are made once (a short anvil run, the same under a tampering server, and one killed after
round 1 of 2); every doctoring is applied to a copy of one. The audits run in this process, so the
test set is loaded and each model evaluated once for all of them."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seccl.cli.main import main

pytestmark = pytest.mark.anvil

SETTINGS = ["-n", "4", "-r", "2", "-l", "0.5", "--per-participant", "100", "--local-epochs", "1"]
SETTINGS += ["--workers", "0", "--chain", "anvil", "--no-progress"]
SKIPPED = ("keys", "tensorboard")  # nothing the audit reads; everything else is copied


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An honest run (M = 2, so an election has an order), the same under a server that tampers
    with the models it hands one participant (θ_0, θ_1 and θ_2: three confirmed findings),
    and a run killed after round 1 of 2."""
    base = tmp_path_factory.mktemp("audited")
    honest, tampered, interrupted = base / "honest", base / "tampered", base / "interrupted"
    assert main(["run", *SETTINGS, "--out", str(honest)]) == 0
    argv = ["run", *SETTINGS, "--server-attack", "tamper-one", "--allow-evidence", "--out", str(tampered)]
    assert main(argv) == 0
    env = {**os.environ, "SECCL_KILL_AT": "2:training"}
    killed = subprocess.run(
        [sys.executable, "-m", "seccl.cli.main", "run", *SETTINGS, "--out", str(interrupted)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr
    return {"honest": honest, "tampered": tampered, "interrupted": interrupted}


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=lambda _d, names: [n for n in names if n in SKIPPED])
    return target


def audit(run: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = main(["audit", str(run)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def discrepancies(lines: list[str]) -> dict[str, list[str]]:
    """The problems the report lists, under the record (or round) they were found in."""
    found: dict[str, list[str]] = {}
    where = ""
    for line in lines:
        if not line.startswith(" "):
            where = line.split(":", 1)[0]
        elif line.startswith("  - ") and not line.startswith(("  - note:", "  - caught")):
            found.setdefault(where, []).append(line[4:])
    return found


# ─────────────── the doctorings ───────────────


def edit_json(run: Path, name: str, change: Callable[[Any], None]) -> None:
    path = run / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def chain_json(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda run: edit_json(run, "chain.json", change)


def metrics_json(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda run: edit_json(run, "metrics.json", change)


def evidence_json(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda run: edit_json(run, "evidence.json", change)


def first(transactions: list[dict[str, Any]], action: str) -> dict[str, Any]:
    return next(t for t in transactions if t["action"] == action)


def hex_flipped(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def gas_plus_one(c: dict[str, Any]) -> None:
    first(c["transactions"], "postUpdate")["gas"] += 1


def status_reverted(c: dict[str, Any]) -> None:
    first(c["transactions"], "submitScores")["status"] = "reverted"


def sender_changed(c: dict[str, Any]) -> None:
    first(c["transactions"], "postModel")["sender"] = c["participants"][0]


def transaction_dropped(c: dict[str, Any]) -> None:
    c["transactions"].remove(first(c["transactions"], "tally"))


def block_moved(c: dict[str, Any]) -> None:
    first(c["transactions"], "postModel")["block"] += 1


def roster_reordered(c: dict[str, Any]) -> None:
    c["participants"][0], c["participants"][1] = c["participants"][1], c["participants"][0]


def phase_changed(c: dict[str, Any]) -> None:
    c["phases"]["ballot"] += 1


def set_key(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data[key] = value(data[key])

    return change


def round_field(r: int, key: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        record = m["rounds"][r - 1]
        record[key] = value(record[key])

    return change


def score_changed(m: dict[str, Any]) -> None:
    row = m["rounds"][0]["scores"][1]
    j = next(j for j, s in enumerate(row) if s is not None)
    row[j] += 1


def address_changed(m: dict[str, Any]) -> None:
    m["participants"][2]["address"] = m["participants"][3]["address"]


def config_seed(m: dict[str, Any]) -> None:
    m["config"]["seed"] = 1


def last_round_removed(m: dict[str, Any]) -> None:
    del m["rounds"][-1]


def finding_dropped(e: dict[str, Any]) -> None:
    del e["evidence"][0]


def verdict_flipped(e: dict[str, Any]) -> None:
    e["evidence"][1]["verdict"]["status"] = "refuted"


def store(run: Path, statement: str, *args: Any) -> None:
    db = sqlite3.connect(run / "messages.sqlite")
    with db:
        db.execute(statement, args)
    db.close()


def message_byte(run: Path) -> None:
    db = sqlite3.connect(run / "messages.sqlite")
    digest, data = db.execute(
        "SELECT digest, data FROM messages WHERE round = 1 AND kind = 0 LIMIT 1"
    ).fetchone()
    changed = bytearray(data)
    changed[-1] ^= 0x01
    with db:
        db.execute("UPDATE messages SET data = ? WHERE digest = ?", (bytes(changed), digest))
    db.close()


def message_deleted(run: Path) -> None:
    store(
        run,
        "DELETE FROM messages WHERE digest = "
        "(SELECT digest FROM messages WHERE round = 2 AND kind = 1 LIMIT 1)",
    )


def tx_id_changed(run: Path) -> None:
    store(
        run,
        "UPDATE messages SET tx_id = ? WHERE digest = "
        "(SELECT digest FROM messages WHERE round = 1 AND kind = 0 LIMIT 1)",
        "0x" + "ab" * 32,
    )


def model_byte(run: Path) -> None:
    path = run / "models" / "round-0001.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the parameters' bytes
    path.write_bytes(bytes(data))


def config_toml_seed(run: Path) -> None:
    path = run / "config.toml"
    path.write_text(path.read_text().replace("\nseed = 0\n", "\nseed = 3\n"))


def run_json_rounds(run: Path) -> None:
    edit_json(run, "run.json", set_key("rounds_completed", lambda v: v - 1))


def csv_accuracy(run: Path) -> None:
    path = run / "metrics.csv"
    lines = path.read_text().splitlines()
    cells = lines[2].split(",")  # round 1 (round 0 is θ_0)
    cells[1] = str(float(cells[1]) + 0.01)
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def checkpoint_finding_dropped(run: Path) -> None:
    """A finding dropped from evidence.json and the metrics' count of findings lowered with it:
    the participant's own record (checkpoint.json) and the chain's upheld accusation still show it."""
    edit_json(run, "evidence.json", lambda e: e["evidence"].pop())
    edit_json(run, "metrics.json", set_key("evidence", lambda v: v - 1))


@dataclass(frozen=True)
class Mutation:
    name: str
    run: str
    apply: Callable[[Path], None]
    where: str  # the record (or round) the audit names
    keyword: str  # a word of the discrepancy it reports


MUTATIONS = [
    # chain.json: every fact against the chain's own blocks, receipts and the contracts' views
    Mutation("tx-gas-plus-one", "honest", chain_json(gas_plus_one), "chain.json", "gas"),
    Mutation("tx-status-reverted", "honest", chain_json(status_reverted), "chain.json", "status 'reverted'"),
    Mutation("tx-sender-changed", "honest", chain_json(sender_changed), "chain.json", "sender"),
    Mutation("tx-dropped", "honest", chain_json(transaction_dropped), "chain.json", "dropped"),
    Mutation("tx-block-moved", "honest", chain_json(block_moved), "chain.json", "block"),
    Mutation(
        "genesis-hash", "honest", chain_json(set_key("genesis_hash", hex_flipped)), "chain.json", "genesis"
    ),
    Mutation(
        "last-block-hash",
        "honest",
        chain_json(set_key("last_block", lambda b: {**b, "hash": hex_flipped(b["hash"])})),
        "chain.json",
        "last_block.hash",
    ),
    Mutation("roster-reordered", "honest", chain_json(roster_reordered), "chain.json", "roster"),
    Mutation("nonce", "honest", chain_json(set_key("nonce", hex_flipped)), "chain.json", "nonce"),
    Mutation(
        "m", "honest", chain_json(set_key("candidates_per_round", lambda m: m - 1)), "chain.json", "M ("
    ),
    Mutation("phase", "honest", chain_json(phase_changed), "chain.json", "phases"),
    Mutation(
        "accusations-upheld",
        "tampered",
        chain_json(set_key("accusations_upheld", lambda n: n - 1)),
        "chain.json",
        "accusations",
    ),
    # metrics.json: against the consensus contract's events and views, the ledger, the models
    Mutation(
        "elected-order-reversed",
        "honest",
        metrics_json(round_field(1, "elected", lambda e: e[::-1])),
        "metrics.json",
        "elected",
    ),
    Mutation("score-changed", "honest", metrics_json(score_changed), "metrics.json", "scores"),
    Mutation(
        "borda-points",
        "honest",
        metrics_json(round_field(2, "borda_points", lambda p: [p[0] + 1, *p[1:]])),
        "metrics.json",
        "Borda",
    ),
    Mutation(
        "abstentions",
        "honest",
        metrics_json(round_field(1, "abstentions", lambda a: [*a[:-1], a[-1] + 1])),
        "metrics.json",
        "abstentions",
    ),
    Mutation(
        "round-accuracy",
        "honest",
        metrics_json(round_field(1, "accuracy", lambda a: a + 0.01)),
        "metrics.json",
        "round-0001.pt on the test set",
    ),
    Mutation(
        "round-gas", "honest", metrics_json(round_field(2, "gas", lambda g: g + 1)), "metrics.json", "gas"
    ),
    Mutation("config-seed", "honest", metrics_json(config_seed), "metrics.json", "config.seed"),
    Mutation("round-removed", "honest", metrics_json(last_round_removed), "metrics.json", "removed"),
    Mutation(
        "final-accuracy",
        "honest",
        metrics_json(set_key("final_accuracy", lambda a: a + 0.01)),
        "metrics.json",
        "final_accuracy",
    ),
    Mutation("participant-address", "honest", metrics_json(address_changed), "metrics.json", "address"),
    Mutation(
        "evidence-count",
        "tampered",
        metrics_json(set_key("evidence", lambda n: n + 1)),
        "metrics.json",
        "findings",
    ),
    # evidence.json: each finding re-judged; none the chain or the participants hold left out
    Mutation("finding-dropped", "tampered", evidence_json(finding_dropped), "evidence.json", "dropped"),
    Mutation(
        "finding-dropped-and-counted",
        "tampered",
        checkpoint_finding_dropped,
        "evidence.json",
        "checkpoint.json",
    ),
    Mutation(
        "verdict-flipped", "tampered", evidence_json(verdict_flipped), "evidence.json", "verdict is refuted"
    ),
    # messages.sqlite and models/: against the digests, signatures and Tx-IDs on the chain
    Mutation("message-byte", "honest", message_byte, "round 1", "stored bytes hash to"),
    Mutation("message-deleted", "honest", message_deleted, "round 2", "missing from the store"),
    Mutation("archive-tx-id", "honest", tx_id_changed, "round 1", "Tx-ID 0xabab"),
    Mutation("model-file-byte", "honest", model_byte, "round 1", "round-0001.pt"),
    # the other records
    Mutation("config-toml-seed", "honest", config_toml_seed, "config.toml", "does not give the θ_0"),
    Mutation("run-json-rounds", "honest", run_json_rounds, "run.json", "rounds_completed"),
    Mutation("metrics-csv-accuracy", "honest", csv_accuracy, "metrics.csv", "round 1: accuracy"),
]


def test_there_are_at_least_25_kinds_of_doctoring() -> None:
    names = [m.name for m in MUTATIONS]
    assert len(set(names)) == len(names) >= 25


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_a_doctored_record_is_caught_and_named(
    mutation: Mutation, runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(runs[mutation.run], tmp_path / "run")
    mutation.apply(run)

    code, lines, err = audit(run, capsys)

    assert code == 1, "\n".join(lines) + err
    assert lines[-1].startswith("inconsistent ("), lines[-1]
    found = discrepancies(lines)
    assert any(mutation.keyword in p for p in found.get(mutation.where, [])), found


def test_the_untouched_runs_audit_clean_consistent_and_incomplete(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = audit(copy_run(runs["honest"], tmp_path / "honest"), capsys)
    assert code == 0 and lines[-1] == "clean", "\n".join(lines)
    assert "AUDIT PASSED" in lines[-2]

    code, lines, _ = audit(copy_run(runs["tampered"], tmp_path / "tampered"), capsys)
    assert code == 0, "\n".join(lines)
    # θ_0, θ_1 (with the training requests) and the final θ_2, each handed over altered.
    assert lines[-1] == "consistent, with 3 confirmed findings against the server"
    assert sum(line.startswith("finding CONFIRMED [recorded: confirmed]") for line in lines) == 3

    code, lines, _ = audit(copy_run(runs["interrupted"], tmp_path / "interrupted"), capsys)
    assert code == 0 and lines[-1] == "incomplete (1 of 2 rounds)", "\n".join(lines)


def test_an_unreadable_record_exits_2_with_one_line(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = copy_run(runs["honest"], tmp_path / "garbage")
    (garbage / "messages.sqlite").write_bytes(b"this is not a database, " * 100)
    code, lines, err = audit(garbage, capsys)
    assert code == 2 and lines == [], lines
    assert err.count("\n") == 1 and "messages.sqlite is not a SecCL message store" in err, err

    missing = copy_run(runs["honest"], tmp_path / "missing")
    (missing / "metrics.json").unlink()
    code, lines, err = audit(missing, capsys)
    assert code == 2 and lines == [] and err.count("\n") == 1 and "metrics.json does not exist" in err, err


def test_the_audit_leaves_the_run_directory_as_it_was(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    run = copy_run(runs["honest"], tmp_path / "run")
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code, _, _ = audit(run, capsys)
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert code == 0 and after == before
