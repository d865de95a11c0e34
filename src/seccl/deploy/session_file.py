"""The session file a consortium agrees to: the roster, the contracts, the chain, the model and
the learning rules. ``seccl session create`` writes it; every party reads it, and a participant
takes part only once the chain confirms every fact in it (``verify_session``)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from seccl.chain.bulletin_board import Phases
from seccl.election import ELECTION_RULES
from seccl.files import atomic_write_bytes
from seccl.learning.aggregation import AGGREGATION_RULES
from seccl.protocol.errors import shown
from seccl.protocol.json_input import parse_json
from seccl.protocol.session import session_from_dict, session_to_dict
from seccl.roles.settings import LearningSettings, SessionInfo

FORMAT = "seccl-session/1"
MODEL = "lenet"
"""The one architecture SecCL trains (:func:`seccl.learning.model.build_model`)."""

MAX_SESSION_FILE_BYTES = 16 * 1024 * 1024
"""A session of 10,000 participants takes some 500 kB; anything much larger is not a session."""
MAX_SESSION_FILE_DEPTH = 8  # the file nests 3 levels (the session's phases)


class SessionFileError(ValueError):
    """A session file is missing, malformed, or not a SecCL session."""


@dataclass(frozen=True)
class SessionFile:
    """Everything a party needs to know about a session before it takes part."""

    session: SessionInfo
    seed: int  # public: θ_0, the shuffling of local batches and the tie-breaking follow from it
    rounds: int
    settings: LearningSettings
    chain_url: str  # where the contracts were deployed; each party may use its own node instead
    first_block: int  # the deployment's first block (where an auditor starts reading)
    model: str = MODEL

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model": self.model,
            "seed": self.seed,
            "rounds": self.rounds,
            "settings": asdict(self.settings),
            "chain_url": self.chain_url,
            "first_block": self.first_block,
            "session": session_to_dict(self.session),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> SessionFile:
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            got = shown(raw.get("format") if isinstance(raw, dict) else type(raw).__name__)
            raise SessionFileError(f"not a SecCL session file (format {got}; expected {FORMAT!r})")
        if raw.get("model") != MODEL:
            raise SessionFileError(f"model: got {shown(raw.get('model'))}; this SecCL trains {MODEL!r}")
        try:
            session = session_from_dict(raw["session"])
            settings = LearningSettings(**raw["settings"])
            seed, rounds, first_block = raw["seed"], raw["rounds"], raw["first_block"]
            chain_url = raw["chain_url"]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SessionFileError(f"malformed session file: {type(exc).__name__}: {exc}") from None
        _integer("seed", seed, 0, 2**64 - 1)  # torch seeds its generators with a uint64
        _integer("rounds", rounds, 1, 2**64 - 1)
        _integer("first_block", first_block, 0, 2**64 - 1)
        if not isinstance(chain_url, str):
            raise SessionFileError(f"chain_url: got {shown(chain_url)}; allowed: a URL")
        _check_session(session)
        _check_settings(settings)
        return cls(session, seed, rounds, settings, chain_url, first_block)

    def write(self, path: Path) -> Path:
        atomic_write_bytes(Path(path), (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return Path(path)

    @classmethod
    def read(cls, path: Path) -> SessionFile:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_SESSION_FILE_BYTES + 1)
        except OSError as exc:
            raise SessionFileError(f"session file {path}: {exc.strerror or exc}") from None
        except ValueError as exc:  # a path with a NUL in it
            raise SessionFileError(f"session file {shown(str(path))}: {exc}") from None
        if len(data) > MAX_SESSION_FILE_BYTES:
            raise SessionFileError(
                f"session file {path}: larger than {MAX_SESSION_FILE_BYTES} bytes; not a session file"
            )
        try:
            raw = parse_json(data, max_depth=MAX_SESSION_FILE_DEPTH)
        except ValueError as exc:
            raise SessionFileError(f"session file {path} is not JSON: {exc}") from None
        return cls.from_dict(raw)


# ─────────────── what each field of a session may hold ───────────────
# A session file that passes these checks cannot make a party fail untyped later: every value
# has the type and range the code that reads it (and the contracts) expect.

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _integer(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SessionFileError(f"{name}: got {shown(value)}; allowed: an integer from {low} to {high}")


def _number(name: str, value: Any, *, at_most: float = math.inf) -> None:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 < value <= at_most
    ):
        allowed = "a finite number above 0" + ("" if at_most == math.inf else f" and at most {at_most:g}")
        raise SessionFileError(f"{name}: got {shown(value)}; allowed: {allowed}")


def _address(name: str, value: Any) -> None:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise SessionFileError(f"{name}: got {shown(value)}; allowed: an address (0x and 40 hex digits)")


def _bytes32(name: str, value: bytes) -> None:
    if len(value) != 32:
        raise SessionFileError(f"{name}: got {len(value)} bytes; allowed: 32 (0x and 64 hex digits)")


def _check_session(s: SessionInfo) -> None:
    _integer("session.chain_id", s.chain_id, 0, 2**256 - 1)
    for name in ("board", "consensus", "server"):
        _address(f"session.{name}", getattr(s, name))
    if not s.participants:
        raise SessionFileError("session.participants: got none; allowed: one address or more")
    for i, address in enumerate(s.participants):
        _address(f"session.participants[{i}]", address)
    _integer("session.dimension", s.dimension, 1, 2**32 - 1)  # messages carry it as a u32
    _integer("session.candidates", s.candidates, 0, s.n)
    for name in ("nonce", "initial_model"):
        _bytes32(f"session.{name}", getattr(s, name))
    for phase in fields(Phases):
        _integer(f"session.phases.{phase.name}", getattr(s.phases, phase.name), 0, 2**64 - 1)
    _integer("session.update_size", s.update_size, 0, s.dimension)
    if s.election not in ELECTION_RULES:
        raise SessionFileError(
            f"session.election: got {shown(s.election)}; allowed: {', '.join(ELECTION_RULES)}"
        )
    _integer("session.assumed_attackers", s.assumed_attackers, 0, max(s.n - 1, 0))
    _number("session.max_abs_value", s.max_abs_value)


def _check_settings(settings: LearningSettings) -> None:
    _integer("settings.local_epochs", settings.local_epochs, 0, 2**31 - 1)
    _number("settings.learning_rate", settings.learning_rate)
    _integer("settings.batch_size", settings.batch_size, 1, 2**31 - 1)
    _number("settings.share_fraction", settings.share_fraction, at_most=1.0)
    if settings.aggregation not in AGGREGATION_RULES:
        allowed = ", ".join(AGGREGATION_RULES)
        raise SessionFileError(f"settings.aggregation: got {shown(settings.aggregation)}; allowed: {allowed}")
    if settings.election not in ELECTION_RULES:
        allowed = ", ".join(ELECTION_RULES)
        raise SessionFileError(f"settings.election: got {shown(settings.election)}; allowed: {allowed}")
    _number("settings.assumed_fraction", settings.assumed_fraction, at_most=0.5)
