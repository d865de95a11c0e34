"""The options of `seccl run` and its kin, made from the run settings; the help layout; the README's table."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from seccl.runs.config import FIELD_NAMES, RunConfig
from seccl.runs.settings import SETTINGS

# Settings whose default is None but whose text is an integer (pydantic checks every value again).
_INT_SETTINGS = {"per_participant", "chain_id"}

METAVARS = {
    "participants": "N",
    "rounds": "R",
    "candidate_fraction": "L",
    "share_fraction": "S",
    "local_epochs": "EPOCHS",
    "learning_rate": "LR",
    "batch_size": "SIZE",
    "data_root": "DIR",
    "alpha": "ALPHA",
    "assumed_fraction": "FRACTION",
    "per_participant": "SAMPLES",
    "validation_fraction": "FRACTION",
    "seed": "SEED",
    "chain": "CHAIN",
    "chain_id": "ID",
    "workers": "W",
    "out_dir": "DIR",
    "attack": "NAME",
    "attack_fraction": "E",
    "attack_start_round": "ROUND",
    "server_attack": "NAME",
    "attack_target": "INDEX",
}


class Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=min(110, _terminal_width()))


class RawFormatter(argparse.RawDescriptionHelpFormatter, Formatter):
    pass


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def _default_text(name: str) -> str:
    setting = SETTINGS[name]
    if setting.default is not None:
        return setting.default
    value = getattr(RunConfig(), name)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _choices() -> dict[str, tuple[str, ...]]:
    from seccl.election import ELECTION_RULES
    from seccl.learning.aggregation import AGGREGATION_RULES
    from seccl.learning.data import DATASET_NAMES
    from seccl.learning.splits import SPLIT_SCHEMES

    return {
        "aggregation": AGGREGATION_RULES,
        "election": ELECTION_RULES,
        "dataset": DATASET_NAMES,
        "split": SPLIT_SCHEMES,
    }


def add_setting(parser: argparse.ArgumentParser, name: str) -> None:
    setting = SETTINGS[name]
    default = getattr(RunConfig(), name)
    kind: Callable[[str], Any] = str
    if isinstance(default, float):
        kind = float
    elif isinstance(default, int) or name in _INT_SETTINGS:
        kind = int
    extra: dict[str, Any] = {}
    choices = _choices().get(name)
    if choices:
        extra["choices"] = choices
    help_text = f"{setting.help} (default: {_default_text(name)})".replace("%", "%%")
    if "choices" not in extra:
        extra["metavar"] = METAVARS[name]
    parser.add_argument(*setting.flags, dest=name, type=kind, default=None, help=help_text, **extra)


def add_settings(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    for name in names:
        add_setting(parser, name)


def config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a TOML file with any of the settings below (default: none)",
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Every option of `seccl run`, in the order --help shows them."""
    config_flag(parser)
    add_settings(parser, FIELD_NAMES)
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR, killed or interrupted at any point, from its last "
        "finished round, with its own settings, keys and chain (default: a new run)",
    )
    parser.add_argument(
        "--allow-evidence",
        action="store_true",
        help="exit 0 even when evidence was found, for experiments with attacks (default: exit 1)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar on a terminal, no progress lines elsewhere (default: progress shown)",
    )


def settings_from(
    args: argparse.Namespace, allowed: Sequence[str]
) -> tuple[RunConfig, dict[str, str], list[str]]:
    """The config from --config and the flags; the settings the user gave, each with where it
    came from ("" for a flag); and warnings."""
    from seccl.runs.given import given_config

    flags = {k: v for k, v in vars(args).items() if k in FIELD_NAMES and v is not None}
    return given_config(args.config, flags, allowed, command=f"seccl {args.command}")


def run_options() -> list[tuple[str, str, str]]:
    """(flags, meaning, default) of every option of `seccl run`, as --help shows them: the
    README's option table is checked against this."""
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    rows = []
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        text = action.help or ""
        meaning, _, default = text.rpartition(" (default: ")
        rows.append((", ".join(action.option_strings), meaning.replace("%%", "%"), default.rstrip(")")))
    return rows


def options_markdown() -> str:
    """The README's option table of `seccl run`, made from the parser (a test checks the README
    holds exactly this; `python -c "from seccl.cli.options import options_markdown as o;
    print(o())"` prints it)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    def default(text: str) -> str:
        return f"`{text}`" if " " not in text or "<" in text else text

    lines = ["| option | meaning | default |", "| --- | --- | --- |"]
    for flags, meaning, value in run_options():
        names = ", ".join(f"`{f}`" for f in flags.split(", "))
        lines.append(f"| {names} | {cell(meaning)} | {cell(default(value))} |")
    return "\n".join(lines) + "\n"
