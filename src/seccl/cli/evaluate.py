"""`seccl evaluate MODEL.pt`: a saved model's test accuracy and macro-F1, scored as runs score theirs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from seccl.cli.common import say
from seccl.cli.options import Formatter
from seccl.learning.data import DATASET_NAMES
from seccl.runs.config import ConfigError


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score a saved model (a run's models/*.pt) on a data set's test split",
        description="Load a PyTorch state_dict of SecCL's model (a run writes one per round: "
        "models/round-NNNN.pt, models/final.pt) and print its accuracy and macro-F1 on the test "
        "split a run with the same --dataset, --data-root and --seed holds out, scored exactly as "
        "the run scores its rounds. For a model inside a run directory, the defaults are that "
        "run's settings.",
        formatter_class=Formatter,
    )
    parser.add_argument("model", type=Path, metavar="MODEL.pt", help="a state_dict file")
    parser.add_argument(
        "--dataset", choices=DATASET_NAMES, default=None, help="(default: the run's, else mnist)"
    )
    parser.add_argument(
        "--data-root", type=Path, default=None, metavar="DIR", help="(default: the run's, else its own)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the seed of the run: it picks MNIST's test digits (default: the run's, else 0)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line instead")
    parser.set_defaults(handler=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    # Imported here, not above: torch is not needed for `seccl --help`.
    from seccl.runs.evaluate import ModelFileError, evaluate_model, run_of

    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"seed (--seed): got {args.seed}; allowed: 0 or more")
    run = run_of(args.model)
    dataset = args.dataset or (run.dataset if run else "mnist")
    seed = args.seed if args.seed is not None else (run.seed if run else 0)
    data_root = args.data_root
    if data_root is None and run is not None and run.data_root and run.dataset == dataset:
        data_root = Path(run.data_root)
    try:
        result = evaluate_model(args.model, dataset=dataset, data_root=data_root, seed=seed)
    except ModelFileError as exc:
        raise ConfigError(f"evaluate: {exc}") from None
    if args.json:
        print(json.dumps(result.to_dict()), flush=True)
    else:
        say(
            f"{args.model}: test accuracy {result.accuracy:.4f}  macro-F1 {result.macro_f1:.4f}  "
            f"({result.samples} {dataset} test samples, seed {seed})"
        )
    return 0
