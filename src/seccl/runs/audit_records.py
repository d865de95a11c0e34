"""`seccl audit` of a run directory's records besides the messages: ``config.toml``,
``metrics.json`` and ``metrics.csv``, ``evidence.json``, ``run.json`` and ``checkpoint.json``,
each against the chain (the consensus contract's elections, ballots and totals, the ledger's gas)
and against each other where the chain says nothing (a finding the participants recorded and
evidence.json left out, the count of findings, the settings)."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seccl.chain.consensus import ConsensusClient
from seccl.chain.ledger import LedgerEntry
from seccl.election import MAX_SCORE
from seccl.learning.data import Dataset, ParticipantData
from seccl.runs.audit_chain import check_seed, check_shape
from seccl.runs.audit_report import Section, guarded
from seccl.runs.config import RunConfig
from seccl.runs.verify import RunChain

ACCURACY_TOLERANCE = 1e-6
"""How far a recomputed accuracy may be from the recorded one (the same forward pass gives the
same figure; this only absorbs a float printed and parsed back)."""

Scores = tuple[float, float]  # (accuracy, macro-F1)
ATTACK = "config.toml's attack"
DATA = "its data, reloaded"
JSON = "metrics.json"


def check_config(section: Section, config: RunConfig, chain: RunChain, rounds_done: int) -> None:
    """config.toml's settings against what the chain fixes: N and M, and the seed (the θ_0 the
    board registers follows from it)."""
    check_seed(section, config.seed, chain.session, "seed")
    check_shape(
        section,
        "config.toml",
        participants=config.participants,
        fraction=config.candidate_fraction,
        session=chain.session,
    )
    if rounds_done > config.rounds:
        section.problems.append(
            f"rounds = {config.rounds}, but the chain holds {rounds_done} finished rounds"
        )
    else:
        section.count("settings")


def check_metrics(
    section: Section,
    metrics: dict[str, Any],
    *,
    config: RunConfig,
    chain: RunChain,
    ledger: list[LedgerEntry],
    evidence: dict[str, Any],
    rounds_done: int,
    accuracy: dict[int, Scores] | None,
    parts: Sequence[ParticipantData] | None,
) -> None:
    """Every fact of metrics.json that the chain, the model files or the other records fix."""
    session = chain.session
    recorded_config = metrics.get("config")
    if not isinstance(recorded_config, dict):
        section.problems.append("config: missing")
    else:
        absent = []
        for key, value in config.to_dict().items():
            if key in recorded_config:
                section.same(f"config.{key}", recorded_config[key], value, "settings", per="config.toml")
            else:
                absent.append(key)
        if absent:  # a setting newer than the run's SecCL: config.toml gives it its default
            section.notes.append(
                f"config holds no {', '.join(absent)} (config.toml gives {len(absent)} default(s))"
            )
        check_seed(section, recorded_config.get("seed"), session, "config.seed")
    section.same(
        "M (candidates_per_round)", metrics.get("candidates_per_round"), session.candidates, "chain facts"
    )
    adversaries = _adversaries(config)
    section.same(
        "the adversaries (adversaries)", metrics.get("adversaries"), adversaries, "settings", per=ATTACK
    )
    findings = evidence.get("evidence")
    if isinstance(findings, list):
        section.same(
            "the number of findings (evidence)",
            metrics.get("evidence"),
            len(findings),
            "counts",
            per="evidence.json",
        )
    rounds = metrics.get("rounds")
    if not isinstance(rounds, list):
        section.problems.append("rounds: missing")
        return
    held = [r.get("round") if isinstance(r, dict) else r for r in rounds]
    if held != list(range(1, rounds_done + 1)):
        section.problems.append(
            f"rounds: the record holds rounds {held}, but the chain finished {rounds_done} "
            f"(rounds 1–{rounds_done}): a round was removed, added or altered"
        )
    by_round = {r.get("round"): r for r in rounds if isinstance(r, dict)}
    rejections = [x for x in evidence.get("rejected_messages") or [] if isinstance(x, dict)]
    for r in range(1, rounds_done + 1):
        record = by_round.get(r)
        if record is None:
            continue
        _check_round(section, r, record, chain, ledger, adversaries, rejections, accuracy)
    last = by_round.get(rounds_done)
    if last is not None:
        last_round = f"round {rounds_done}'s record"
        section.same(
            "final_accuracy", metrics.get("final_accuracy"), last.get("accuracy"), "accuracy", per=last_round
        )
        section.same(
            "final_macro_f1", metrics.get("final_macro_f1"), last.get("macro_f1"), "accuracy", per=last_round
        )
    if accuracy is not None and 0 in accuracy:
        _close(
            section, "initial_accuracy (θ_0 on the test set)", metrics.get("initial_accuracy"), accuracy[0][0]
        )
        if "initial_macro_f1" in metrics and metrics["initial_macro_f1"] is not None:
            _close(
                section, "initial_macro_f1 (θ_0 on the test set)", metrics["initial_macro_f1"], accuracy[0][1]
            )
        if rounds_done in accuracy:
            _close(
                section,
                "final_accuracy (the last model on the test set)",
                metrics.get("final_accuracy"),
                accuracy[rounds_done][0],
            )
    _check_participants(section, metrics.get("participants"), session.participants, adversaries, parts)
    cost = metrics.get("chain_cost")
    if isinstance(cost, dict):
        in_rounds = [e for e in ledger if e.round is not None and 1 <= e.round <= rounds_done]
        for key, entries in (("rounds", in_rounds), ("session", ledger)):
            given = cost.get(key)
            stated = given if isinstance(given, dict) else {}
            section.same(f"chain_cost.{key}.transactions", stated.get("transactions"), len(entries), "gas")
            section.same(f"chain_cost.{key}.gas", stated.get("gas"), sum(e.gas for e in entries), "gas")
        section.notes.append(
            "chain_cost.server_sent is the server's own account "
            "(a resumed server does not count what it took as done)"
        )


def _check_round(
    section: Section,
    r: int,
    record: dict[str, Any],
    chain: RunChain,
    ledger: list[LedgerEntry],
    adversaries: list[int],
    rejections: list[dict[str, Any]],
    accuracy: dict[int, Scores] | None,
) -> None:
    consensus, session = chain.consensus, chain.session
    where = f"round {r}"
    elected = list(consensus.elected_of(r))
    section.same(
        f"{where}: the elected candidates, in order (elected)", record.get("elected"), elected, "elections"
    )
    index = {a.lower(): i for i, a in enumerate(session.participants)}
    counted = consensus.ballots_of(r)
    rows: list[list[int | None] | None] = [None] * session.n
    for ballot in counted:
        rows[index[ballot.voter.lower()]] = [None if s > MAX_SCORE else s for s in ballot.scores]
    recorded_scores = record.get("scores")
    if isinstance(recorded_scores, list) and len(recorded_scores) == session.n:
        for i, (got, want) in enumerate(zip(recorded_scores, rows, strict=True)):
            section.same(f"{where}: voter {i}'s counted scores (scores[{i}])", got, want, "scores")
    else:
        section.same(f"{where}: the score matrix (scores)", recorded_scores, rows, "scores")
    points, abstentions = consensus.totals_of(r) if isinstance(consensus, ConsensusClient) else ((), ())
    section.same(
        f"{where}: the Borda points (borda_points)", record.get("borda_points"), list(points), "totals"
    )
    section.same(
        f"{where}: the abstentions (abstentions)", record.get("abstentions"), list(abstentions), "totals"
    )
    section.same(
        f"{where}: the ballots counted (ballots)",
        record.get("ballots"),
        consensus.election_of(r).ballots,
        "counts",
    )
    spent = [e for e in ledger if e.round == r]
    section.same(f"{where}: its gas (gas)", record.get("gas"), sum(e.gas for e in spent), "gas")
    section.same(f"{where}: its transactions (transactions)", record.get("transactions"), len(spent), "gas")
    section.same(
        f"{where}: the rejected messages (rejections)",
        record.get("rejections"),
        sum(x.get("round") == r for x in rejections),
        "counts",
        per="evidence.json's rejected_messages",
    )
    section.same(
        f"{where}: the adversaries (adversaries)",
        record.get("adversaries"),
        adversaries,
        "settings",
        per=ATTACK,
    )
    section.same(
        f"{where}: the adversaries elected (adversaries_elected)",
        record.get("adversaries_elected"),
        sorted(set(adversaries) & set(elected)),
        "elections",
    )
    if accuracy is not None and r in accuracy:
        _close(
            section,
            f"{where}: accuracy (round-{r:04d}.pt on the test set)",
            record.get("accuracy"),
            accuracy[r][0],
        )
        _close(
            section,
            f"{where}: macro_f1 (round-{r:04d}.pt on the test set)",
            record.get("macro_f1"),
            accuracy[r][1],
        )


def _close(section: Section, what: str, recorded: Any, actual: float) -> None:
    if (
        isinstance(recorded, (int, float))
        and not isinstance(recorded, bool)
        and math.isclose(recorded, actual, rel_tol=0.0, abs_tol=ACCURACY_TOLERANCE)
    ):
        section.count("accuracy")
    else:
        section.problems.append(f"{what}: the record says {recorded!r}; recomputed, it is {actual!r}")


def _adversaries(config: RunConfig) -> list[int]:
    if not config.attack:
        return []
    from seccl.roles.adversaries.registry import choose_adversaries

    return sorted(choose_adversaries(config.participants, config.attack_fraction, config.seed))


def _check_participants(
    section: Section,
    recorded: Any,
    roster: Sequence[str],
    adversaries: list[int],
    parts: Sequence[ParticipantData] | None,
) -> None:
    if not isinstance(recorded, list) or len(recorded) != len(roster):
        section.problems.append(
            f"participants: the record lists {len(recorded) if isinstance(recorded, list) else recorded!r}, "
            f"the roster {len(roster)}"
        )
        return
    for i, p in enumerate(recorded):
        if not isinstance(p, dict):
            section.problems.append(f"participants[{i}]: not a participant")
            continue
        section.same(
            f"participant {i}'s index", p.get("index"), i, "participants", per="its place in the list"
        )
        section.same(
            f"participant {i}'s address",
            p.get("address"),
            roster[i],
            "participants",
            per=f"the board's roster (position {i})",
        )
        section.same(
            f"participant {i}'s adversary flag",
            p.get("adversary"),
            i in adversaries,
            "participants",
            per=ATTACK,
        )
        if parts is None or i >= len(parts):
            continue
        for key, data in (("train", parts[i].train), ("validation", parts[i].validation)):
            section.same(
                f"participant {i}'s {key}_samples", p.get(f"{key}_samples"), len(data), "data facts", per=DATA
            )
            section.same(
                f"participant {i}'s {key}_class_counts",
                p.get(f"{key}_class_counts"),
                [int(c) for c in data.class_counts()],
                "data facts",
                per=DATA,
            )
            section.same(
                f"participant {i}'s {key}_sha256",
                p.get(f"{key}_sha256"),
                data.sha256(),
                "data facts",
                per=DATA,
            )


def metrics_section(
    metrics: Any,
    *,
    config: RunConfig,
    chain: RunChain,
    ledger: list[LedgerEntry],
    evidence: Any,
    rounds_done: int,
    accuracy: dict[int, Scores] | None,
    parts: Sequence[ParticipantData] | None,
) -> tuple[Section, dict[str, Any]]:
    """metrics.json's section (:func:`check_metrics`) and the figures metrics.csv is checked
    against: a record that is no object is a problem, then checked as an empty one so that every
    figure it should hold is reported missing."""
    section = Section(JSON)
    if not isinstance(metrics, dict):
        section.problems.append("not a run's metrics")
        metrics = {}
    guarded(
        check_metrics,
        section,
        metrics,
        config=config,
        chain=chain,
        ledger=ledger,
        evidence=evidence if isinstance(evidence, dict) else {},
        rounds_done=rounds_done,
        accuracy=accuracy,
        parts=parts,
    )
    return section, metrics


def metrics_csv_section(path: Path, metrics: dict[str, Any]) -> Section:
    """metrics.csv's section: the file at ``path`` (which exists) against metrics.json's figures
    (:func:`check_metrics_csv`)."""
    section = Section("metrics.csv")
    guarded(check_metrics_csv, section, path.read_text(errors="replace"), metrics)
    return section


def check_metrics_csv(section: Section, text: str, metrics: dict[str, Any]) -> None:
    """metrics.csv repeats metrics.json's scalar figures (round 0: θ_0's accuracy and macro-F1):
    each row must say the same."""
    rows = list(csv.DictReader(io.StringIO(text)))
    rounds = metrics.get("rounds") or []
    by_round = {r.get("round"): r for r in rounds if isinstance(r, dict)}
    numbered = [row for row in rows if row.get("round") != "0"]
    if len(numbered) != len(by_round):
        section.problems.append(f"the CSV holds {len(numbered)} rounds; metrics.json {len(by_round)}")
    for row in rows:
        try:
            r = int(row.get("round") or "")
        except ValueError:
            section.problems.append(f"a row's round {row.get('round')!r} is not a round")
            continue
        if r == 0:
            section.same(
                "round 0: accuracy",
                _number(row.get("accuracy")),
                metrics.get("initial_accuracy"),
                "figures",
                per=JSON,
            )
            if metrics.get("initial_macro_f1") is not None:
                section.same(
                    "round 0: macro_f1",
                    _number(row.get("macro_f1")),
                    metrics["initial_macro_f1"],
                    "figures",
                    per=JSON,
                )
            continue
        record = by_round.get(r)
        if record is None:
            section.problems.append(f"round {r} is not in metrics.json")
            continue
        elected = " ".join(str(c) for c in record.get("elected") or [])
        section.same(f"round {r}: elected", row.get("elected"), elected, "figures", per=JSON)
        for key in ("accuracy", "macro_f1", "gas", "transactions", "ballots", "evidence", "rejections"):
            section.same(f"round {r}: {key}", _number(row.get(key)), record.get(key), "figures", per=JSON)


def _number(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def check_run_json(section: Section, described: dict[str, Any], config: RunConfig, rounds_done: int) -> None:
    """run.json: the rounds it says were completed and planned, and the seed."""
    section.same(
        "rounds_completed (the rounds finished)", described.get("rounds_completed"), rounds_done, "facts"
    )
    section.same("rounds_planned", described.get("rounds_planned"), config.rounds, "facts", per="config.toml")
    section.same("seed", described.get("seed"), config.seed, "facts", per="config.toml")


_EVALUATED: dict[tuple[str, str, int], Scores] = {}
"""Figures already computed in this process, by (test set, model, batch size): the same model
on the same test set gives the same figures, so auditing copies of one run evaluates it once."""


def evaluate_models(held: dict[int, np.ndarray], test: Dataset, *, batch_size: int) -> dict[int, Scores]:
    """(accuracy, macro-F1) of each held model on the test set, as the run computed them."""
    from seccl.learning.evaluation import Evaluator

    evaluator: Evaluator | None = None
    fingerprint = test.sha256()
    out = {}
    for r, params in sorted(held.items()):
        key = (
            fingerprint,
            hashlib.sha256(np.ascontiguousarray(params, dtype=np.float32).tobytes()).hexdigest(),
            batch_size,
        )
        if key not in _EVALUATED:
            if evaluator is None:
                evaluator = Evaluator(test, batch_size=batch_size)
            if len(_EVALUATED) > 256:
                _EVALUATED.clear()
            _EVALUATED[key] = evaluator.evaluate(params)
        out[r] = _EVALUATED[key]
    return out
