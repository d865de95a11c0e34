"""The session file a consortium agrees to: the roster, the contracts, the chain, the model and
the learning rules. ``seccl session create`` writes it; every party reads it, and a participant
takes part only once the chain confirms every fact in it (``verify_session``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seccl.files import atomic_write_bytes
from seccl.protocol.session import session_from_dict, session_to_dict
from seccl.roles.settings import LearningSettings, SessionInfo

FORMAT = "seccl-session/1"
MODEL = "lenet"
"""The one architecture SecCL trains (:func:`seccl.learning.model.build_model`)."""


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
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise SessionFileError(f"not a SecCL session file (format {got!r}; expected {FORMAT!r})")
        if raw.get("model") != MODEL:
            raise SessionFileError(f"model: got {raw.get('model')!r}; this SecCL trains {MODEL!r}")
        try:
            session = session_from_dict(raw["session"])
            settings = LearningSettings(**raw["settings"])
            seed, rounds, first_block = int(raw["seed"]), int(raw["rounds"]), int(raw["first_block"])
            chain_url = str(raw["chain_url"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SessionFileError(f"malformed session file: {type(exc).__name__}: {exc}") from None
        if rounds < 1:
            raise SessionFileError(f"rounds: got {rounds}; allowed: 1 or more")
        return cls(session, seed, rounds, settings, chain_url, first_block)

    def write(self, path: Path) -> Path:
        atomic_write_bytes(Path(path), (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return Path(path)

    @classmethod
    def read(cls, path: Path) -> SessionFile:
        try:
            raw = json.loads(Path(path).read_text())
        except OSError as exc:
            raise SessionFileError(f"session file {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise SessionFileError(f"session file {path} is not JSON: {exc}") from None
        return cls.from_dict(raw)
