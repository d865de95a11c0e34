"""`seccl audit` of the findings a run recorded: each verdict in ``evidence.json`` against the
one the chain gives, every accusation the chain upheld and every finding the participants kept
in ``checkpoint.json`` present in it (a finding left out was dropped), and the checkpoint's session
the chain's."""

from __future__ import annotations

from typing import Any

from seccl.chain.bulletin_board import BulletinBoardClient
from seccl.protocol.evidence import Evidence
from seccl.protocol.session import SessionInfo, session_from_dict
from seccl.runs.audit_report import FindingCheck, Section
from seccl.runs.verify import RunChain


def upheld_accusations(board: BulletinBoardClient) -> list[tuple[int, str, str, str]]:
    """Every accusation the board upheld against the server: (round, accuser, offence, Tx-ID)."""
    return [
        (r, accuser, offence.name.lower().replace("_", "-"), tx)
        for r, accuser, offence, tx in board.accusations()
    ]


def check_accusations_recorded(
    section: Section,
    findings: list[Evidence],
    board: BulletinBoardClient,
    session: SessionInfo,
    *,
    accuser: str | None = None,
) -> None:
    """Each accusation the chain upheld (of ``accuser``, if given) must be a finding of the
    record: a record that leaves one out has dropped a finding."""
    for r, who, offence, tx in upheld_accusations(board):
        if accuser is not None and who.lower() != accuser.lower():
            continue
        # The finding cites the accusation it filed (evidence.json's tx_id); one of the same
        # finder and round that cites no transaction is taken for it too.
        cited = [f for f in findings if (f.tx_id or "").lower() == tx.lower()]
        same = [f for f in findings if (f.round, f.finder.lower(), f.tx_id) == (r, who.lower(), None)]
        if cited or same:
            section.count("upheld accusations recorded")
            continue
        index = session.participants.index(who) if who in session.participants else None
        by = f"participant {index}" if index is not None else who
        section.problems.append(
            f"the chain upheld {by}'s accusation of round {r} ({offence}, tx {tx}), but the record holds "
            "no finding of it (a finding was dropped)"
        )


def check_evidence(
    section: Section,
    checks: list[FindingCheck],
    findings: list[Evidence],
    chain: RunChain,
    checkpoint: dict[str, Any] | None,
) -> None:
    """evidence.json against the chain and the participants' own records: each recorded verdict
    is the one the chain gives; every accusation the chain upheld, and every finding a
    participant recorded in the checkpoint, is in it."""
    for k, f in enumerate(checks):
        e = f.evidence
        label = f"finding {k} (round {e.round}, {e.kind}, by {_who(e)})"
        if f.recorded is None:
            section.problems.append(f"{label} has no recorded verdict")
        elif f.recorded != str(f.verdict.status):
            section.problems.append(
                f"{label}: the record's verdict is {f.recorded}, but the chain's is {f.verdict.status} "
                f"({f.verdict.reason})"
            )
        else:
            section.count("verdicts")
    check_accusations_recorded(section, findings, chain.board, chain.session)
    if checkpoint is None:
        section.notes.append("no checkpoint.json: the participants' own findings are not at hand to compare")
        return
    held = {_key(e) for e in findings}
    kept: list[tuple[str, Evidence]] = []
    for i, p in enumerate(checkpoint.get("participants") or []):
        for raw in (p or {}).get("evidence") or []:
            kept.append((f"participant {i}", Evidence.from_dict(raw)))
    for raw in checkpoint.get("evidence") or []:
        kept.append(("the run", Evidence.from_dict(raw)))
    missing: dict[tuple[Any, ...], tuple[str, Evidence]] = {}
    recorded = {_key(e) for _, e in kept if _key(e) in held}
    if recorded:
        section.count("participants' findings recorded", len(recorded))
    for who, e in kept:
        if _key(e) not in held:
            missing.setdefault(_key(e), (who, e))  # the finder's own record first, then the run's
    for who, e in missing.values():
        section.problems.append(
            f"{who} recorded a finding (round {e.round}, {e.kind}, tx {e.tx_id or '-'}) in checkpoint.json "
            "that evidence.json does not hold (a finding was dropped)"
        )


def _who(e: Evidence) -> str:
    return f"participant {e.finder_index}" if e.finder_index is not None else e.finder[:10]


def _key(e: Evidence) -> tuple[Any, ...]:
    return (
        e.round,
        str(e.kind),
        e.finder.lower(),
        e.subject.lower(),
        (e.tx_id or "").lower(),
        (e.expected_digest or "").lower(),
        (e.recorded_digest or "").lower(),
    )


def check_checkpoint(
    section: Section, checkpoint: dict[str, Any], chain: RunChain, facts: dict[str, Any], rounds_done: int
) -> None:
    """checkpoint.json: the session it resumes is the chain's, and it is the last round's."""
    try:
        kept = session_from_dict(checkpoint["session"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        section.problems.append(f"its session is malformed ({type(exc).__name__}: {exc})")
        return
    s = chain.session
    for name in (
        "board",
        "consensus",
        "server",
        "participants",
        "candidates",
        "nonce",
        "phases",
        "initial_model",
    ):
        section.same(f"the session's {name}", getattr(kept, name), getattr(s, name), "session facts")
    for name in ("dimension", "update_size", "max_abs_value"):
        section.same(
            f"the session's {name}", getattr(kept, name), facts.get(name), "session facts", per="chain.json"
        )
    round_ = checkpoint.get("round")
    if round_ not in (rounds_done, rounds_done + 1):  # + 1: the round whose model the server never posted
        section.problems.append(
            f"it is the checkpoint of round {round_!r}, but the chain finished {rounds_done}"
        )
    else:
        section.count("session facts")
