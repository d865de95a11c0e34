"""What `seccl audit` found, and the one-line verdict it ends with.

The verdict is one of: ``clean`` (every record matches the chain and nothing was found wrong);
``consistent, with N confirmed findings against the server`` (every record matches the chain,
and the records hold what the participants caught: a correct record of a bad server);
``incomplete (K of R rounds)`` (every record matches the chain, but the session did not finish
its rounds); ``inconsistent (...)`` (a record says what the chain or another record does not).
"""

from __future__ import annotations

import sqlite3
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seccl.protocol.evidence import Evidence, EvidenceKind
from seccl.protocol.json_input import MAX_RECORD_DEPTH, parse_json
from seccl.protocol.verification import Status, Verdict
from seccl.runs.audit_rounds import ReadOnlyArchive, RoundAudit
from seccl.runs.config import ConfigError, RunConfig, load_config


class AuditInputError(Exception):
    """What was given cannot be audited at all: a missing or unreadable file, no chain to check
    against. One line says what (exit 2)."""


def read_config(path: Path) -> RunConfig:
    """A run's config.toml; an :class:`AuditInputError` when it is missing or cannot be read."""
    if not path.is_file():
        raise AuditInputError(f"{path} does not exist")
    try:
        return load_config(path)
    except (ConfigError, tomllib.TOMLDecodeError, OSError) as exc:
        raise AuditInputError(
            f"{path} cannot be read: {str(exc).splitlines()[0] if str(exc) else exc}"
        ) from None


def read_json(path: Path, what: str = "") -> Any:
    """A JSON record, or one line saying why it cannot be read."""
    if not path.is_file():
        raise AuditInputError(f"{path} does not exist{what}")
    try:
        return parse_json(path.read_bytes(), max_depth=MAX_RECORD_DEPTH)
    except (OSError, ValueError) as exc:
        raise AuditInputError(f"{path} cannot be read as JSON: {exc}") from None


def open_archive(path: Path, what: str = "the run stored no messages to audit") -> ReadOnlyArchive:
    """``path`` opened read-only, or why it cannot be audited."""
    if not path.is_file():
        raise AuditInputError(f"{path} does not exist: {what}")
    try:
        return ReadOnlyArchive(path)
    except sqlite3.Error as exc:
        raise AuditInputError(f"{path} is not a SecCL message store (SQLite: {exc})") from None


MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)
"""What a record of the wrong shape raises when read (a list where an object belongs, …)."""


def guarded(check: Callable[..., object], section: Section, *args: Any, **kwargs: Any) -> None:
    """Run ``check`` on ``section``; a record of the wrong shape is a problem of the record, not
    a failure of the audit."""
    try:
        check(section, *args, **kwargs)
    except MALFORMED as exc:
        section.problems.append(f"malformed ({type(exc).__name__}: {exc})")


@dataclass
class Section:
    """The checks of one record (``chain.json``, ``metrics.json``, …) against the chain and the
    other records: how many facts agreed, and every one that did not."""

    name: str
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, what: str, n: int = 1) -> None:
        self.checked[what] = self.checked.get(what, 0) + n

    def same(
        self, what: str, recorded: object, actual: object, label: str = "", *, per: str = "the chain"
    ) -> bool:
        """Count ``label`` when ``recorded`` equals ``actual`` (what ``per`` says); else name the
        difference."""
        if _normal(recorded) == _normal(actual):
            self.count(label or "facts")
            return True
        self.problems.append(f"{what}: the record says {_shown(recorded)}; {per} says {_shown(actual)}")
        return False

    def lines(self) -> list[str]:
        figures = ", ".join(f"{n} {what}" for what, n in self.checked.items()) or "nothing to compare"
        head = (
            f"{self.name}: ok ({figures})"
            if not self.problems
            else (f"{self.name}: {len(self.problems)} problem(s) ({figures})")
        )
        return [head, *(f"  - {p}" for p in self.problems), *(f"  - note: {n}" for n in self.notes)]


def _normal(value: object) -> object:
    """Values as a JSON record and the chain both spell them: addresses and hex in any case,
    tuples as lists."""
    if isinstance(value, str) and value.startswith("0x"):
        return value.lower()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def _shown(value: object) -> str:
    if isinstance(value, bytes):
        value = "0x" + value.hex()
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "…"


@dataclass(frozen=True)
class FindingCheck:
    """A finding, the audit's verdict on it, and the verdict its record states (None: none)."""

    evidence: Evidence
    verdict: Verdict
    recorded: str | None = None

    @property
    def against(self) -> str:
        """Whom the finding, if confirmed, is against: the server, except for an invalid update or
        one never revealed, whose author is at fault; a refuted finding is against its finder."""
        e = self.evidence
        if self.verdict.status is Status.REFUTED:
            return _who(e.finder_index, e.finder, "finder")
        if e.kind in (EvidenceKind.INVALID_MESSAGE, EvidenceKind.UPDATE_NOT_REVEALED):
            return _who(e.subject_index, e.subject, "author")
        return "the server"


def _who(index: int | None, address: str, role: str) -> str:
    return f"participant {index}" if index is not None else f"{address[:10]} (its {role})"


@dataclass
class AuditReport:
    """A whole audit: each round's checks, each record's, and the verdict on each finding.

    ``accusations`` are the accusations the chain upheld against the server that no finding of
    the records covers (a deployment's server keeps no findings): each is a confirmed finding,
    the contract having checked it.
    """

    rounds: list[RoundAudit]
    findings: list[FindingCheck]
    sections: list[Section] = field(default_factory=list)
    rounds_done: int = 0
    rounds_planned: int | None = None
    header: list[str] = field(default_factory=list)
    accusations: list[str] = field(default_factory=list)
    scope: str = (
        "every stored message, ballot, election and model matches the chain, and so does every record"
    )

    def explained(self) -> list[tuple[int, str, FindingCheck]]:
        """The round problems a confirmed finding of the records shows to be the server's recorded
        deviation: (round, problem, finding)."""
        out = []
        for audit in self.rounds:
            for problem, kind in audit.explainable:
                for f in self.findings:
                    if f.verdict.status is Status.CONFIRMED and (f.evidence.round, f.evidence.kind) == (
                        audit.round,
                        kind,
                    ):
                        out.append((audit.round, problem, f))
                        break
        return out

    def discrepancies(self) -> list[tuple[str, str]]:
        """Every disagreement (where, what), the explained ones left out."""
        explained = {(r, p) for r, p, _ in self.explained()}
        out = [
            (f"round {a.round}", p) for a in self.rounds for p in a.problems if (a.round, p) not in explained
        ]
        out += [(s.name, p) for s in self.sections for p in s.problems]
        return out

    @property
    def refuted(self) -> int:
        return sum(f.verdict.status is Status.REFUTED for f in self.findings)

    @property
    def ok(self) -> bool:
        """Every record agrees with the chain and with the others (exit 0)."""
        return not self.discrepancies()

    @property
    def incomplete(self) -> bool:
        return self.rounds_planned is not None and self.rounds_done < self.rounds_planned

    def verdict(self) -> str:
        """The last line: clean, consistent with findings, incomplete, or inconsistent."""
        found = self.discrepancies()
        if found:
            where = list(dict.fromkeys(w for w, _ in found))
            shown = ", ".join(where[:4]) + (f" and {len(where) - 4} more" if len(where) > 4 else "")
            first = found[0][1]
            first = first if len(first) <= 200 else first[:197] + "…"
            many = "discrepancy" if len(found) == 1 else "discrepancies"
            return f"inconsistent ({len(found)} {many}, in {shown}: {first})"
        findings = self._findings_phrase()
        if self.incomplete:
            return f"incomplete ({self.rounds_done} of {self.rounds_planned} rounds)" + (
                f", with {findings}" if findings else ""
            )
        return f"consistent, with {findings}" if findings else "clean"

    def _findings_phrase(self) -> str:
        confirmed: Counter[str] = Counter()
        for f in self.findings:
            if f.verdict.status is Status.CONFIRMED:
                confirmed[f.against] += 1
        confirmed["the server"] += len(self.accusations)
        parts = [
            f"{n} confirmed finding{'s' if n != 1 else ''} against {who}" for who, n in confirmed.items() if n
        ]
        refuted = Counter(f.against for f in self.findings if f.verdict.status is Status.REFUTED)
        parts += [
            f"{n} refuted finding{'s' if n != 1 else ''} (false, by {who})" for who, n in refuted.items()
        ]
        unprovable = sum(f.verdict.status is Status.UNPROVABLE for f in self.findings)
        if unprovable:
            parts.append(
                f"{unprovable} unprovable finding{'s' if unprovable != 1 else ''} (on the finder's word)"
            )
        return "; ".join(parts)

    def lines(self) -> list[str]:
        out = list(self.header)
        explained = self.explained()
        for audit in self.rounds:
            caught = {p: str(f.evidence.kind) for r, p, f in explained if r == audit.round}
            out += audit.summary(caught).splitlines()
        for section in self.sections:
            out += section.lines()
        for f in self.findings:
            said = "" if f.recorded is None else f" [recorded: {f.recorded}]"
            out.append(
                f"finding {f.verdict.status.upper()}{said}: {f.evidence.summary()} ({f.verdict.reason})"
            )
        out += [f"accusation upheld by the chain: {a}" for a in self.accusations]
        found = self.discrepancies()
        if not found:
            deviations = f" (the server's deviations caught: {len(explained)})" if explained else ""
            out.append(
                f"AUDIT PASSED: {self.rounds_done} rounds, {self.scope}{deviations}; "
                f"{len(self.findings)} findings checked"
            )
        else:
            out.append(f"AUDIT FAILED: {len(found)} discrepancies, {self.refuted} refuted findings")
        out.append(self.verdict())
        return out
