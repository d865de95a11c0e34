"""`seccl compare`: runs and baselines side by side, in one plot and one markdown table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seccl.cli.common import say, warn
from seccl.cli.options import Formatter
from seccl.runs.config import ConfigError, check_output_dir
from seccl.runs.directory import check_writable


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "compare",
        help="overlay runs (and baselines) in one plot and one markdown table",
        description="Overlay the accuracy and macro-F1 of runs (and baselines) in compare.png "
        "and tabulate them in compare.md.",
        formatter_class=Formatter,
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run or baseline directories")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write compare.png and compare.md (default: runs/compare-<names of the runs>)",
    )
    parser.set_defaults(handler=compare)


def compare(args: argparse.Namespace) -> int:
    from seccl.runs.compare import CompareError, compare_runs, compare_warnings, default_out

    try:
        target = args.out or default_out(args.runs)
        check_output_dir(target, "--out")
        check_writable(target, "--out")
        warn(compare_warnings(args.runs))
        files, table = compare_runs(args.runs, target)
    except CompareError as exc:
        raise ConfigError(f"compare: {exc}") from None
    print(table, end="")
    say(f"written to {files['plot']} and {files['table']}")
    return 0
