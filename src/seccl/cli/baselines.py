"""`seccl baseline` (centralized training) and `seccl federated` (the comparison's chain-free runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from seccl.cli.common import say, warn
from seccl.cli.options import Formatter, add_setting, add_settings, config_flag, settings_from
from seccl.runs.config import BASELINE_FIELDS, FIELD_NAMES, check_given, check_output_dir, validated

DEFAULT_BASELINE_EPOCHS = 10
MAX_EPOCHS = 1000
# A federated run has no chain and trains in this one process, so those settings would do nothing.
FEDERATED_FIELDS = tuple(name for name in FIELD_NAMES if name not in ("chain", "chain_id", "workers"))


def add_parsers(sub: Any) -> None:
    base = sub.add_parser(
        "baseline",
        help="train the same model centrally on the union of the participants' train parts",
        description="The paper's baseline: one model trained centrally on the samples the "
        "participants of the same settings would hold. Writes baseline.json and baseline.png.",
        formatter_class=Formatter,
    )
    config_flag(base)
    add_settings(base, BASELINE_FIELDS)
    base.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"epochs over the union of the train parts (default: {DEFAULT_BASELINE_EPOCHS})",
    )
    base.set_defaults(handler=baseline)

    from seccl.experiments.baselines import METHODS

    federated = sub.add_parser(
        "federated",
        help="the comparison's baselines: the same participants and attacks, no chain, a robust rule",
        description="A chain-free federated run on the participants, data and attacks a SecCL "
        "session of the same settings would have, aggregated by a rule of the comparison "
        "(" + ", ".join(METHODS) + "; see seccl.experiments.baselines). Writes metrics.json "
        "into the run directory when the run ends; a run cut short writes nothing.",
        formatter_class=Formatter,
    )
    config_flag(federated)
    federated.add_argument("--method", required=True, choices=METHODS, help="the aggregation rule")
    for name in FEDERATED_FIELDS:
        add_setting(federated, name)
    federated.set_defaults(handler=federated_run)


def baseline(args: argparse.Namespace) -> int:
    from seccl.runs.centralized import train_baseline

    config, _, warnings = settings_from(args, BASELINE_FIELDS)
    epochs = validated(
        "epochs (--epochs)",
        DEFAULT_BASELINE_EPOCHS if args.epochs is None else args.epochs,
        Annotated[int, Field(ge=1, le=MAX_EPOCHS)],
        f"an integer from 1 to {MAX_EPOCHS}",
    )
    out = config.baseline_dir(epochs)
    check_output_dir(out)
    warn(warnings)
    history, files = train_baseline(config, epochs, out, log=say)
    say(
        f"final test accuracy {history[-1].accuracy:.4f}, macro-F1 {history[-1].macro_f1:.4f}; "
        f"written to {files['baseline']} and {files['plot']}"
    )
    return 0


def federated_run(args: argparse.Namespace) -> int:
    from seccl.experiments.baselines import RESULT_NAME, run_federated, write_result

    config, given, warnings = settings_from(args, FEDERATED_FIELDS)
    check_given(config, given)
    out = (
        Path(config.out_dir)
        if config.out_dir
        else config.run_dir.with_name(f"{args.method}-{config.run_dir.name}")
    )
    check_output_dir(out)
    if (out / RESULT_NAME).is_file():
        say(f"{out} already holds a finished run: nothing to do")
        return 0
    warn(warnings)
    attack = f", attack {config.attack} e={config.attack_fraction:g}" if config.attack else ""
    say(
        f"federated ({args.method}, no chain): {config.participants} participants, {config.rounds} rounds, "
        f"s={config.share_fraction:g}, {config.dataset} ({config.split}), {config.local_epochs} local "
        f"epochs, seed {config.seed}{attack}"
    )
    record = run_federated(config, args.method, log=say)
    path = write_result(record, out)
    say(f"final test accuracy {record['final_accuracy']:.4f} in {record['seconds']:.0f} s; written to {path}")
    return 0
