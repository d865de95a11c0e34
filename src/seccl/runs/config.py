"""The configuration of one SecCL run: typed, range-checked settings, loadable from TOML and saved
beside every result.

Every setting is validated by pydantic in strict mode when a :class:`RunConfig` is made (from
flags, from TOML, or in code), before any data loads or any process starts: a wrong type
(``rounds = "2"``, ``rounds = 2.5``, ``participants = true``), a value out of range, or a
combination that cannot work (an attack with no adversary, an attack that starts after the last
round, more candidates than an election can have) raises :class:`ConfigError`, whose message
names the setting, the value and what is allowed. :func:`check_given` refuses settings the user
gave that would do nothing (``-e`` without ``--attack``).

The flags, meaning and allowed values of each setting are in :mod:`seccl.runs.settings`.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from seccl.election import ELECTION_RULES
from seccl.learning.aggregation import AGGREGATION_RULES
from seccl.learning.data import DATASET_NAMES
from seccl.learning.splits import SPLIT_SCHEMES
from seccl.runs.settings import (
    MAX_SEED,
    SETTINGS,
    Fraction01,
    attack_names,
    chain_setting,
    is_url,
    label_of,
    one_of,
    server_attack_name,
    server_attacks,
)


class ConfigError(Exception):
    """A setting is of the wrong type, out of range, unknown, or would do nothing. The message
    names the setting, the value and what is allowed (one line per problem)."""


_CONFIG = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")


@dataclass(frozen=True, config=_CONFIG)
class RunConfig:
    """Everything a run depends on. Defaults are the README's main job."""

    participants: Annotated[int, Field(ge=3, le=256)] = 10
    rounds: Annotated[int, Field(ge=1)] = 5
    candidate_fraction: Fraction01 = 0.2  # l: M = ceil(l·N) candidates per round (the paper's Fig. 5)
    share_fraction: Annotated[float, Field(gt=0, le=1)] = 0.1  # s: the paper shares the 10% largest |Δ|
    # With a tenth of the paper's data per participant, one local epoch per round is far too
    # little work (measured: 0.38 against 0.93 accuracy after 10 rounds with 1 and 10 epochs).
    local_epochs: Annotated[int, Field(ge=1, le=1000)] = 10
    learning_rate: Annotated[float, Field(gt=0)] = 0.02  # the paper's
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 32  # the paper's
    aggregation: Annotated[str, one_of(AGGREGATION_RULES)] = "shared-mean"
    election: Annotated[str, one_of(ELECTION_RULES)] = "borda"  # the paper's; "gram-gate": issue 23's
    assumed_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.3  # gram-gate's f = ⌊fraction·N⌋
    dataset: Annotated[str, one_of(DATASET_NAMES)] = "mnist"
    data_root: str | None = None
    split: Annotated[str, one_of(SPLIT_SCHEMES)] = "iid"  # the paper's: equal random shares
    alpha: Annotated[float, Field(gt=0)] = 0.5  # Dirichlet concentration, for split = "dirichlet"
    per_participant: Annotated[int, Field(ge=2)] | None = None  # train + validation; None: an equal share
    validation_fraction: Fraction01 = 0.2
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    chain: Annotated[str, AfterValidator(chain_setting)] = "anvil"  # "anvil", "embedded" or a JSON-RPC URL
    chain_id: Annotated[int, Field(ge=1)] | None = None  # what the node at a URL must report
    workers: Annotated[int, Field(ge=0, le=64)] = 2  # both cores of the machines this targets
    out_dir: str | None = None  # default: runs/<dataset>-n<N>-r<R>-l<l>[-…]-seed<seed>[-attack]
    # Adversaries (see `seccl.roles.adversaries`).
    attack: Annotated[str, AfterValidator(attack_names)] | None = None  # e.g. "label-flip"; "+" combines
    attack_fraction: Annotated[float, Field(ge=0, le=1)] = 0.2  # e: round(e·N) participants (Fig. 5)
    attack_start_round: Annotated[int, Field(ge=1)] = 1  # the paper's colluders start at round 5
    server_attack: Annotated[str, AfterValidator(server_attack_name)] | None = None
    attack_target: Annotated[int, Field(ge=0)] = 0  # the participant a server attack singles out

    @model_validator(mode="wrap")
    @classmethod
    def _validated(cls, values: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            config = handler(values)
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None
        config._check_combination()
        return config

    def _check_combination(self) -> None:
        """The checks that involve more than one setting."""
        problems = []
        n = self.participants
        m = math.ceil(round(self.candidate_fraction * n, 9))
        if m > n - 1:
            problems.append(
                f"{label_of('candidate_fraction')}: got {self.candidate_fraction:g}, which with N = {n} "
                f"participants asks for M = ⌈l·N⌉ = {m} candidates; an election needs a loser, so M is "
                f"at most N−1 = {n - 1}; allowed: l ≤ {(n - 1) / n:.4g}"
            )
        if self.election == "gram-gate" and self.aggregation not in ("shared-mean", "clipped-shared-mean"):
            problems.append(
                f"{label_of('aggregation')}: got {self.aggregation}; the gram-gate election aggregates "
                "with clipped-shared-mean (part of the rule); allowed: clipped-shared-mean"
            )
        if self.attack_target >= n:
            problems.append(f"{label_of('attack_target')}: got {self.attack_target}; allowed: 0 to {n - 1}")
        if self.dataset == "idx" and self.data_root is None:
            problems.append(
                f"{label_of('data_root')}: missing; --dataset idx needs the directory of the four IDX files"
            )
        if self.chain_id is not None and not is_url(self.chain):
            problems.append(
                f"{label_of('chain_id')}: got {self.chain_id}, which applies only to --chain URL "
                f"(the chain is {self.chain!r})"
            )
        if self.per_participant is not None:
            held = max(1, round(self.validation_fraction * self.per_participant))
            if self.per_participant - held < 1:
                problems.append(
                    f"{label_of('per_participant')}: got {self.per_participant}, which keeps {held} for "
                    f"validation (validation_fraction {self.validation_fraction:g}) and leaves none to "
                    f"train on; allowed: at least {held + 1}"
                )
        if self.attack is not None:
            from seccl.roles.adversaries.registry import adversary_count

            if adversary_count(n, self.attack_fraction) < 1:
                smallest = 0.5 / n
                problems.append(
                    f"{label_of('attack_fraction')}: got {self.attack_fraction:g}, which makes round(e·N) = "
                    f"round({self.attack_fraction * n:.3g}) = 0 adversaries of N = {n}, so --attack "
                    f"{self.attack} would do nothing; allowed: e ≥ {smallest:.3g} for N = {n}"
                )
            if self.attack_start_round > self.rounds:
                problems.append(
                    f"{label_of('attack_start_round')}: got {self.attack_start_round}, after the last "
                    f"round ({self.rounds}), so --attack {self.attack} would never start; "
                    f"allowed: 1 to {self.rounds}"
                )
        if problems:
            raise ConfigError("\n".join(problems))

    @property
    def candidates(self) -> int:
        """M = ⌈l·N⌉, the candidates elected per round."""
        return math.ceil(round(self.candidate_fraction * self.participants, 9))

    def elected_label(self, candidates: int | None = None) -> str:
        """How many a round elects, for titles: exactly M under Borda; under gram-gate every
        candidate over the round's bar, and at least M."""
        m = self.candidates if candidates is None else candidates
        return f"M\u2265{m}" if self.election == "gram-gate" else f"M={m}"

    @property
    def run_dir(self) -> Path:
        if self.out_dir:
            return Path(self.out_dir)
        name = f"{self.dataset}-n{self.participants}-r{self.rounds}-l{self.candidate_fraction:g}"
        name += self._name_extras(_RUN_EXTRAS)
        name += f"-seed{self.seed}"
        if self.attack:
            name += f"-{self.attack}-e{self.attack_fraction:g}"
            if self.attack_start_round != 1:
                name += f"-from{self.attack_start_round}"
        if self.server_attack:
            name += f"-server-{self.server_attack}"
            if "attack_target" not in self.inert():
                name += f"-target{self.attack_target}"
        return Path("runs") / name

    def baseline_dir(self, epochs: int) -> Path:
        """Where ``seccl baseline --epochs epochs`` of this config's data writes by default."""
        if self.out_dir:
            return Path(self.out_dir)
        name = f"{self.dataset}-n{self.participants}-baseline-epochs{epochs}"
        name += self._name_extras(_BASELINE_EXTRAS)
        return Path("runs") / f"{name}-seed{self.seed}"

    def _name_extras(self, extras: dict[str, str]) -> str:
        """A name part for every listed setting that differs from its default."""
        default = _DEFAULTS
        out = ""
        for key, tag in extras.items():
            value = getattr(self, key)
            if value == getattr(default, key) or key in self.inert():
                continue
            out += f"-{tag}{value:g}" if isinstance(value, float) else f"-{tag}{value}"
        return out

    def data_key(self) -> dict[str, Any]:
        """The settings that fix the participants' data and the SGD settings: a run and a
        baseline with the same key trained on the same samples."""
        keys = ("dataset", "data_root", "participants", "split", "per_participant", "validation_fraction")
        key = {k: getattr(self, k) for k in (*keys, "learning_rate", "batch_size", "seed")}
        if self.split == "dirichlet":
            key["alpha"] = self.alpha
        return key

    def inert(self) -> dict[str, str]:
        """The settings that do nothing in this config, and why."""
        out: dict[str, str] = {}
        if self.attack is None:
            out["attack_fraction"] = out["attack_start_round"] = "there is no --attack"
        if self.server_attack is None:
            out["attack_target"] = "there is no --server-attack"
        elif not server_attacks()[self.server_attack]:
            out["attack_target"] = f"server attack {self.server_attack!r} does not single out a participant"
        if self.split != "dirichlet":
            out["alpha"] = f"the split is {self.split!r}, not 'dirichlet'"
        if self.election != "gram-gate":
            out["assumed_fraction"] = f"the election is {self.election!r}, not 'gram-gate'"
        else:
            out["aggregation"] = "the gram-gate election aggregates with clipped-shared-mean"
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_toml(self) -> str:
        """The config as TOML that loads back to it; settings that do nothing are comments."""
        lines = ["# SecCL run configuration (written by `seccl run`)"]
        inert = self.inert()
        for key, value in self.to_dict().items():
            if value is None:
                lines.append(f"# {key} = (default)")
                continue
            text = _toml_value(value)
            lines.append(f"# {key} = {text}  ({inert[key]})" if key in inert else f"{key} = {text}")
        return "\n".join(lines) + "\n"

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


_DEFAULTS = RunConfig()
FIELD_NAMES = tuple(f.name for f in fields(RunConfig))
BASELINE_FIELDS = tuple(name for name in FIELD_NAMES if SETTINGS[name].baseline)
_RUN_EXTRAS = {
    "share_fraction": "s",
    "local_epochs": "le",
    "learning_rate": "lr",
    "batch_size": "b",
    "aggregation": "",
    "election": "",
    "assumed_fraction": "f",
    "split": "",
    "alpha": "alpha",
    "per_participant": "pp",
    "validation_fraction": "vf",
}
_BASELINE_EXTRAS = {k: v for k, v in _RUN_EXTRAS.items() if SETTINGS[k].baseline}
assert set(SETTINGS) == set(FIELD_NAMES), "every setting has its flags, help and allowed values"


_KINDS = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def _shown(value: Any) -> str:
    return _toml_value(value) if isinstance(value, (bool, int, float, str)) else repr(value)


def describe(exc: ValidationError, allowed: dict[str, str] | None = None) -> str:
    """One line per problem: the setting (key and flags), the value given and what is allowed."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        value = error.get("input")
        if error["type"] == "unexpected_keyword_argument":
            lines.append(_unknown(name))
            continue
        allowed_text = (allowed or {}).get(name) or (SETTINGS[name].allowed if name in SETTINGS else "")
        got = f"got {_shown(value)}"
        if error["type"].endswith("_type"):
            got += f" ({_KINDS.get(type(value), type(value).__name__)})"
        elif error["type"] == "value_error":
            got += f" ({error['ctx']['error']})"
        elif error["type"] == "finite_number":
            got += " (not finite)"
        lines.append(f"{label_of(name)}: {got}; allowed: {allowed_text}")
    return "\n".join(lines)


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(key, FIELD_NAMES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown setting {key!r}; {hint}known: {', '.join(FIELD_NAMES)}"


def read_toml(path: Path | str) -> dict[str, Any]:
    """The table of a TOML config file; every way the file can be unreadable is a ConfigError."""
    path = Path(path)
    where = f"config (--config): {path}"
    if path.is_dir():
        raise ConfigError(f"{where} is a directory; allowed: a TOML file such as configs/quick.toml")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text; allowed: a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None


def config_from(values: dict[str, Any], *, source: str | None = None) -> RunConfig:
    """A validated RunConfig from ``values`` (setting name -> value); ``source`` (a file) prefixes
    every message."""
    unknown = sorted(set(values) - set(FIELD_NAMES))
    try:
        if unknown:
            raise ConfigError("\n".join(_unknown(k) for k in unknown))
        return RunConfig(**values)
    except ConfigError as exc:
        if source is None:
            raise
        raise ConfigError("\n".join(f"{source}: {line}" for line in str(exc).splitlines())) from None


def load_config(path: Path | str) -> RunConfig:
    """A RunConfig from a TOML file; unknown keys and wrong types are errors, never ignored."""
    return config_from(read_toml(path), source=str(path))


def check_given(config: RunConfig, given: Iterable[str] | Mapping[str, str]) -> None:
    """Refuse the settings the user gave (``given``) that would do nothing in ``config``.
    ``given`` may map each setting to where it came from (a file), which prefixes its message."""
    where = dict(given) if isinstance(given, Mapping) else dict.fromkeys(given, "")
    inert = config.inert()
    problems = [
        (f"{where[k]}: " if where[k] else "")
        + f"{label_of(k)}: got {_shown(getattr(config, k))}, which does nothing because {inert[k]}"
        for k in FIELD_NAMES
        if k in where and k in inert
    ]
    if problems:
        raise ConfigError("\n".join(problems))


def check_output_dir(path: Path, label: str = "out_dir (--out)") -> None:
    """Refuse an output directory that is a file, lies under a file, or cannot be written."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{label}: {path} is a file; allowed: {SETTINGS['out_dir'].allowed}")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{label}: {path} lies under {ancestor}, which is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{label}: {ancestor} is not writable, so {path} cannot be made there")


def validated(name: str, value: Any, annotation: Any, allowed: str) -> Any:
    """``value`` of a setting outside RunConfig (``epochs`` of `seccl baseline`), checked by
    pydantic against ``annotation``."""
    try:
        return TypeAdapter(annotation, config=ConfigDict(strict=True, allow_inf_nan=False)).validate_python(
            value
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        got = f"got {_shown(error.get('input'))}"
        raise ConfigError(f"{name}: {got}; allowed: {allowed}") from None
