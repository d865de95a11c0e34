"""`seccl data split`: a data set split into one private .npz per participant and a test.npz, for trials."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seccl.cli.common import positive, setup_command
from seccl.cli.options import Formatter
from seccl.learning.data import DATASET_NAMES
from seccl.learning.splits import SPLIT_SCHEMES


def add_parser(sub: Any) -> None:
    data = sub.add_parser("data", help="private data files for trials", formatter_class=Formatter)
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    split = actions.add_parser(
        "split",
        help="split a data set into one private .npz per participant and a test.npz",
        formatter_class=Formatter,
    )
    split.add_argument("--dataset", choices=DATASET_NAMES, default="mnist", help="(default: mnist)")
    split.add_argument("--data-root", type=Path, help="where the data set's files are (default: its own)")
    split.add_argument("-n", "--participants", type=int, required=True, help="how many participants")
    split.add_argument("--out", type=Path, required=True, metavar="DIR", help="the directory to write")
    split.add_argument("--seed", type=int, default=0, help="(default: 0)")
    split.add_argument("--split", choices=SPLIT_SCHEMES, default="iid", help="(default: iid)")
    split.add_argument(
        "--alpha", type=float, default=0.5, help="Dirichlet α of --split dirichlet (default: 0.5)"
    )
    split.add_argument("--per-participant", type=int, help="digits each (default: an equal share of all)")
    split.set_defaults(handler=data_split)


@setup_command
def data_split(args: argparse.Namespace) -> int:
    from seccl.deploy.setup import split_data

    paths = split_data(
        dataset=args.dataset,
        participants=positive(args.participants, "--participants"),
        out_dir=args.out,
        seed=args.seed,
        split=args.split,
        alpha=args.alpha,
        per_participant=args.per_participant,
        data_root=args.data_root,
    )
    print(f"{len(paths)} participant files and test.npz in {args.out}", flush=True)
    return 0
