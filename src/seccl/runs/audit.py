"""`seccl audit`: re-verifies a run's records from the chain, trusting none of them.

What it audits is a run directory (`seccl run`), a deployment's server records
(``server/records``) or a participant's state directory (``participant-NNNN/state``). Round by
round, every stored message is checked against the chain (:mod:`seccl.runs.audit_rounds`); then
every other record: each fact of ``chain.json`` against the chain's own blocks, receipts and the
contracts' views (:mod:`seccl.runs.audit_chain`), ``metrics.json``, ``metrics.csv``,
``evidence.json``, ``run.json`` and ``checkpoint.json`` against the chain and against each other,
with the accuracy recomputed from the model files when the test set is at hand
(:mod:`seccl.runs.audit_records`), a deployment's records likewise
(:mod:`seccl.runs.audit_deploy`). The report ends with one line (:mod:`seccl.runs.audit_report`):
``clean``, ``consistent, with N confirmed findings against the server``, ``incomplete (K of R
rounds)`` or ``inconsistent (...)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seccl.learning.data import Dataset, ParticipantData
from seccl.learning.evaluation import TEST_BATCH
from seccl.learning.sparse import update_size
from seccl.protocol.evidence import Evidence
from seccl.protocol.verification import verify_evidence
from seccl.runs.audit_chain import (
    check_bounds,
    check_chain_record,
    model_dimension,
    rounds_done,
    run_chain,
    session_ledger,
)
from seccl.runs.audit_evidence import check_checkpoint, check_evidence
from seccl.runs.audit_records import (
    check_config,
    check_run_json,
    evaluate_models,
    metrics_csv_section,
    metrics_section,
)
from seccl.runs.audit_report import (
    MALFORMED,
    AuditInputError,
    AuditReport,
    FindingCheck,
    Section,
    guarded,
    open_archive,
    read_config,
    read_json,
)
from seccl.runs.audit_rounds import RoundAudit, audit_model_files, audit_session
from seccl.runs.config import ConfigError, RunConfig

__all__ = [
    "AuditInputError",
    "AuditReport",
    "RoundAudit",
    "audit_model_files",
    "audit_path",
    "audit_run",
    "audit_session",
]

ARCHIVE = "messages.sqlite"
MAX_ABS_VALUE = 10.0  # the simulation's agreed bound (runtime.simulation.SessionOptions)


def audit_path(path: Path, *, url: str | None = None, session_file: Path | None = None) -> AuditReport:
    """Audit whatever ``path`` holds: a run directory (or its evidence.json), a deployment's
    server records, or a participant's state directory."""
    from seccl.runs.audit_deploy import (
        audit_participant_state,
        audit_server_records,
        is_participant_state,
        is_server_records,
    )

    path = Path(path)
    if not path.exists():
        raise AuditInputError(
            f"{path} does not exist: give a run directory, a deployment's server/records "
            "or a participant's state"
        )
    directory = path if path.is_dir() else path.parent
    if is_server_records(directory):  # before a run: they hold a run's records too
        return audit_server_records(directory, url=url, session_file=session_file)
    if (directory / "chain.json").is_file():
        return audit_run(directory, url=url)
    if is_participant_state(directory):
        return audit_participant_state(directory, url=url, session_file=session_file)
    if (directory / "server" / "records").is_dir():
        raise AuditInputError(
            f"{directory} is a deployment: audit its server's records ({directory / 'server' / 'records'}) "
            "or a participant's state (participant-NNNN/state)"
        )
    raise AuditInputError(
        f"{directory / 'chain.json'} does not exist: give a run directory, a deployment's server/records "
        "or a participant's state"
    )


_DATA_CACHE: dict[str, tuple[list[ParticipantData], Dataset]] = {}


def run_data(config: RunConfig) -> tuple[list[ParticipantData], Dataset] | str:
    """The participants' data and the test set of ``config`` (loaded once per process), or why
    they are not at hand."""
    from seccl.runs.launch import participant_data

    key = json.dumps({**config.data_key(), "participants": config.participants}, sort_keys=True)
    if key not in _DATA_CACHE:
        try:
            _DATA_CACHE.clear()  # one data set at a time: a test set is megabytes
            _DATA_CACHE[key] = participant_data(config)
        except ConfigError as exc:
            return str(exc)
    return _DATA_CACHE[key]


def audit_run(path: Path, *, url: str | None = None) -> AuditReport:
    """Audit the run directory ``path`` (or the one holding it) from its chain: its messages,
    models and every record."""
    run_dir = path if path.is_dir() else path.parent
    facts = read_json(run_dir / "chain.json", ": give a run directory")
    if not isinstance(facts, dict):
        raise AuditInputError(f"{run_dir / 'chain.json'} is not a run's chain record")
    archive = open_archive(run_dir / ARCHIVE)
    with archive:
        evidence = read_json(run_dir / "evidence.json")
        metrics = read_json(run_dir / "metrics.json")
        described = read_json(run_dir / "run.json")
        checkpoint = (
            read_json(run_dir / "checkpoint.json") if (run_dir / "checkpoint.json").is_file() else None
        )
        config = read_config(run_dir / "config.toml")
        findings, recorded = _findings(run_dir / "evidence.json", evidence)
        data = run_data(config)
        # The update format from what fixes it (the architecture, the settings' s, the session the
        # checkpoint kept), against the board's; chain.json's own figures are checked below.
        dimension = model_dimension()
        agreed_format = (
            dimension,
            update_size(config.share_fraction, dimension),
            _max_abs_value(checkpoint, facts),
        )
        with run_chain(run_dir, facts, url) as (chain, w3):
            done = rounds_done(chain.board, config.rounds)
            header = [f"run {run_dir}: the chain at {url or 'its pinned anvil state (anvil-state.json)'}"]
            rounds = audit_session(
                chain.session, chain.board, chain.consensus, archive, aggregation=config.aggregation
            )
            held = audit_model_files(run_dir / "models", chain.session, chain.board, rounds)
            checks = [
                FindingCheck(
                    e,
                    verify_evidence(
                        e, chain.session, chain.board, chain.consensus, aggregation=config.aggregation
                    ),
                    status,
                )
                for e, status in zip(findings, recorded, strict=True)
            ]
            sections = []
            record = Section("chain.json")
            s = chain.session
            record.same(
                "the board's update format (dimension, update_size, max_abs_value)",
                agreed_format,
                (s.dimension, s.update_size, s.max_abs_value),
                "agreed bounds",
                per="the board",
            )
            check_bounds(record, facts, share_fraction=config.share_fraction, aggregation=config.aggregation)
            first = checkpoint.get("first_block") if isinstance(checkpoint, dict) else None
            first = first if isinstance(first, int) else None
            try:
                ledger = check_chain_record(record, facts, chain, w3, first_block=first)
            except MALFORMED as exc:
                record.problems.append(f"malformed ({type(exc).__name__}: {exc})")
                ledger = session_ledger(w3, chain.session, first or 1, int(w3.eth.block_number))
            accuracy = None
            parts = None
            if isinstance(data, str):
                header.append(f"accuracy not rechecked (test set not at hand: {data})")
            else:
                parts, test = data
                record.same(
                    "the test set's SHA-256 (test_set_sha256)",
                    facts.get("test_set_sha256"),
                    test.sha256(),
                    "data facts",
                    per="the test set, reloaded",
                )
                accuracy = evaluate_models(held, test, batch_size=TEST_BATCH)
            sections.append(record)
            settings = Section("config.toml")
            guarded(check_config, settings, config, chain, done)
            sections.append(settings)
            figures, metrics = metrics_section(
                metrics,
                config=config,
                chain=chain,
                ledger=ledger,
                evidence=evidence,
                rounds_done=done,
                accuracy=accuracy,
                parts=parts,
            )
            sections.append(figures)
            if (run_dir / "metrics.csv").is_file():
                sections.append(metrics_csv_section(run_dir / "metrics.csv", metrics))
            found = Section("evidence.json")
            guarded(
                check_evidence,
                found,
                checks,
                findings,
                chain,
                checkpoint if isinstance(checkpoint, dict) else None,
            )
            sections.append(found)
            about = Section("run.json")
            guarded(check_run_json, about, described if isinstance(described, dict) else {}, config, done)
            sections.append(about)
            if isinstance(checkpoint, dict):
                kept = Section("checkpoint.json")
                guarded(check_checkpoint, kept, checkpoint, chain, facts, done)
                sections.append(kept)
        incomplete_run = isinstance(described, dict) and described.get("complete") is False
        report = AuditReport(
            rounds,
            checks,
            sections,
            rounds_done=done,
            rounds_planned=config.rounds,
            header=header,
        )
        if incomplete_run and done == config.rounds:
            report.header.append(
                "run.json says the run did not end (its last steps after the rounds may be missing)"
            )
        return report


def _findings(path: Path, raw: Any) -> tuple[list[Evidence], list[str | None]]:
    """The findings of a run's evidence.json with the verdict each records."""
    items = raw.get("evidence") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise AuditInputError(f"{path} is not a SecCL evidence file (no list of findings)")
    findings, recorded = [], []
    for k, item in enumerate(items):
        try:
            findings.append(Evidence.from_dict(item))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AuditInputError(f"{path}: finding {k} is malformed ({type(exc).__name__}: {exc})") from None
        verdict = item.get("verdict") if isinstance(item, dict) else None
        recorded.append(str(verdict.get("status")) if isinstance(verdict, dict) else None)
    return findings, recorded


def _max_abs_value(checkpoint: Any, facts: dict[str, Any]) -> float:
    for source in ((checkpoint or {}).get("session") if isinstance(checkpoint, dict) else None, facts):
        value = source.get("max_abs_value") if isinstance(source, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return MAX_ABS_VALUE
