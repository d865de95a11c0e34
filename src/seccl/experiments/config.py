"""The configuration of one SecCL run: a dataclass, loadable from TOML, saved beside every result."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from seccl.learning.aggregation import AGGREGATION_RULES
from seccl.learning.data import DATASET_NAMES, SPLIT_SCHEMES


class ConfigError(ValueError):
    """A configuration value is unknown or out of range."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on. Defaults are the README's main job."""

    participants: int = 10
    rounds: int = 5
    candidate_fraction: float = 0.2  # l: M = ceil(l·N) candidates per round (the paper's Fig. 5)
    share_fraction: float = 0.1  # s: the paper shares the 10% largest |Δ|
    # With a tenth of the paper's data per participant, one local epoch per round is far too
    # little work (DESIGN.md calibration: 0.38 vs 0.93 accuracy after 10 rounds).
    local_epochs: int = 10
    learning_rate: float = 0.02  # the paper's
    batch_size: int = 32  # the paper's
    aggregation: str = "shared-mean"
    dataset: str = "mnist"
    data_root: str | None = None
    split: str = "iid"  # the paper's: equal random shares
    alpha: float = 0.5  # Dirichlet concentration, for split = "dirichlet"
    per_participant: int | None = None  # samples each (train + validation); None: an equal share
    validation_fraction: float = 0.2
    seed: int = 0
    chain: str = "embedded"  # "embedded", "anvil" (started here), or a JSON-RPC URL
    out_dir: str | None = None  # default: runs/<dataset>-n<N>-r<R>-l<l>-seed<seed>
    # Adversaries (see `seccl.roles.malicious_participant` and `seccl.roles.malicious_server`).
    attack: str | None = None  # a participant attack, e.g. "label-flip"; "+" combines two
    attack_fraction: float = 0.2  # e: round(e·N) participants run it (the paper's Fig. 5)
    attack_start_round: int = 1  # the paper's colluders start at round 5
    server_attack: str | None = None  # e.g. "tamper-all", "equivocate", "misreport-scores"
    attack_target: int = 0  # the participant a server attack singles out

    def __post_init__(self) -> None:
        checks = [
            (self.participants >= 3, "participants must be at least 3"),
            (self.participants <= 256, "participants must be at most 256 (the contracts' limit)"),
            (self.rounds >= 1, "rounds must be at least 1"),
            (0 < self.candidate_fraction < 1, "candidate_fraction (l) must be in (0, 1)"),
            (0 < self.share_fraction <= 1, "share_fraction (s) must be in (0, 1]"),
            (self.local_epochs >= 1, "local_epochs must be at least 1"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.aggregation in AGGREGATION_RULES, f"aggregation must be one of {AGGREGATION_RULES}"),
            (self.dataset in DATASET_NAMES, f"dataset must be one of {DATASET_NAMES}"),
            (self.split in SPLIT_SCHEMES, f"split must be one of {SPLIT_SCHEMES}"),
            (self.alpha > 0, "alpha must be positive"),
            (0 < self.validation_fraction < 1, "validation_fraction must be in (0, 1)"),
            (0 <= self.attack_fraction <= 1, "attack_fraction (e) must be in [0, 1]"),
            (self.attack_start_round >= 1, "attack_start_round must be at least 1"),
            (0 <= self.attack_target < self.participants, "attack_target must be a participant index"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self._check_attack_names()

    def _check_attack_names(self) -> None:
        from seccl.roles.malicious_participant import PARTICIPANT_ATTACKS
        from seccl.roles.malicious_server import SERVER_ATTACKS

        if self.attack is not None:
            unknown = [a for a in self.attack.split("+") if a not in PARTICIPANT_ATTACKS]
            if unknown:
                raise ConfigError(
                    f"unknown participant attack {unknown[0]!r}; known: {', '.join(PARTICIPANT_ATTACKS)}"
                )
        if self.server_attack is not None and self.server_attack not in SERVER_ATTACKS:
            raise ConfigError(
                f"unknown server attack {self.server_attack!r}; known: {', '.join(SERVER_ATTACKS)}"
            )

    @property
    def run_dir(self) -> Path:
        if self.out_dir:
            return Path(self.out_dir)
        name = f"{self.dataset}-n{self.participants}-r{self.rounds}-l{self.candidate_fraction:g}"
        name += f"-seed{self.seed}"
        if self.attack:
            name += f"-{self.attack}-e{self.attack_fraction:g}"
        if self.server_attack:
            name += f"-server-{self.server_attack}"
        return Path("runs") / name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_toml(self) -> str:
        lines = ["# SecCL run configuration (written by `seccl run`)"]
        for key, value in self.to_dict().items():
            if value is None:
                lines.append(f"# {key} = (default)")
            elif isinstance(value, str):
                lines.append(f'{key} = "{value}"')
            elif isinstance(value, bool):
                lines.append(f"{key} = {str(value).lower()}")
            else:
                lines.append(f"{key} = {value}")
        return "\n".join(lines) + "\n"

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


FIELD_NAMES = tuple(f.name for f in fields(RunConfig))


def load_config(path: Path | str) -> RunConfig:
    """A RunConfig from a TOML file; unknown keys are an error, not silently ignored."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"unknown keys in {path}: {', '.join(unknown)}; known: {', '.join(FIELD_NAMES)}")
    try:
        return RunConfig(**data)
    except TypeError as exc:
        raise ConfigError(f"bad value in {path}: {exc}") from None
