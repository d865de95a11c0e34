"""`seccl experiment`: a grid of runs and baselines, in one or more workers, resumed where it stopped."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seccl.cli.common import say
from seccl.cli.options import Formatter
from seccl.runs.config import ConfigError

RunArgv = Callable[[list[str]], int]


def add_parser(sub: Any, run_argv: RunArgv) -> None:
    """``run_argv`` runs one of the experiment's command lines (`run ...`, `baseline ...`) in this
    process and returns its exit code."""
    parser = sub.add_parser(
        "experiment",
        help="run an experiment: a grid of runs and baselines, resumed where it stopped",
        description="Run the experiment NAME (fig4, fig5, compare, election) or a TOML file of the "
        "same form: every run not yet finished, in order (runs finished earlier are skipped, runs "
        "cut short are resumed), recording each finished run in OUT/records/ and rewriting "
        "results.csv, a plot and a table per group, and results.md from the records.",
        formatter_class=Formatter,
    )
    parser.add_argument(
        "name", metavar="NAME", help="fig4, fig5, compare, election, or an experiment TOML file"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the results: the reports and every finished run's record, kilobytes per run; a run "
        "with a record here is finished (default: runs/experiments/NAME)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the runs themselves go (DIR/runs/RUN: chain, models, messages, megabytes each), "
        "with their configs, the workers' claims and logs (default: the --out directory)",
    )
    parser.add_argument(
        "--commit",
        action="store_true",
        help="after each run, commit the --out directory (and nothing else) to the git repository "
        "it is in, so that the results survive the machine and a fresh clone resumes from them; "
        "needs a --work directory outside --out",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: record the runs finished in the work directory, rewrite the reports "
        "from the records (and commit them with --commit)",
    )
    parser.add_argument(
        "--methods",
        type=lambda text: [m.strip() for m in text.split(",") if m.strip()],
        default=None,
        metavar="LIST",
        help="run only the runs of these methods (comma-separated, e.g. multikrum,median), leaving "
        "the others for a later call, for example to run the rules a change does not touch first; "
        "the reports still cover every recorded run",
    )
    parser.add_argument(
        "--runs",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=None,
        metavar="PATTERNS",
        help="run only the runs whose names match one of these shell patterns (comma-separated, "
        "e.g. 'e0.3-*-seed2'), leaving the others for a later call; with --methods, the runs both "
        "select",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="K",
        help="run K runs at a time, in K worker processes that claim runs by lock (each worker's "
        "output beyond the first goes to worker-I.log in the work directory); a second `seccl "
        "experiment` on the same directories joins in the same way",
    )
    parser.set_defaults(handler=functools.partial(experiment, run_argv=run_argv))


def experiment(args: argparse.Namespace, *, run_argv: RunArgv) -> int:
    from seccl.experiments.grid import run_experiment
    from seccl.experiments.plan import Places, Selection, check_records, experiment_path, load_experiment
    from seccl.experiments.reports import write_outputs
    from seccl.experiments.workers import failed_logs, helper_workers

    if args.jobs < 1:
        raise ConfigError(f"--jobs: need at least 1 worker, got {args.jobs}")
    plan = load_experiment(experiment_path(args.name))
    methods = frozenset(args.methods) if args.methods is not None else None
    patterns = tuple(args.runs) if args.runs is not None else None
    selection = Selection(methods=methods, patterns=patterns)
    selection.check(plan)
    results = args.out or Path("runs") / "experiments" / plan.name
    places = Places(results=results, work=args.work or results)
    work, out = places.work.resolve(), results.resolve()
    if args.commit and (work == out or out in work.parents):
        # Else the runs themselves (chains, models, messages: megabytes each) would be committed.
        raise ConfigError(
            f"--commit: give --work a directory outside --out ({results}), or the runs themselves "
            "(megabytes each) would be committed with the results"
        )
    where = f"{results}" + (f" (runs in {places.work})" if places.work != results else "")
    say(f"experiment {plan.name}: {plan.title}; {len(plan.runs)} runs into {where}")
    places.work.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        check_records(plan, places)  # run_experiment checks them before its first run
        write_outputs(plan, places, say, commit=args.commit)
        say(f"results: {results / 'results.md'}, {results / 'results.csv'}")
        return 0
    # The helpers are this same command on the same directories: they join it as a second
    # `seccl experiment` would, claiming runs by lock.
    helper = [sys.executable, "-m", "seccl.cli.main", "experiment", args.name]
    helper += ["--out", str(results), "--work", str(places.work), *(["--commit"] if args.commit else [])]
    helper += selection.argv()
    with helper_workers(helper, places.work, args.jobs - 1) as helpers:
        statuses = run_experiment(plan, places, run_argv, say=say, commit=args.commit, selection=selection)
        failed = failed_logs(helpers)
    if args.jobs > 1:  # the helpers may have finished the last runs after this worker's last report
        write_outputs(plan, places, say, commit=args.commit)
    stopped = [name for name, status in statuses.items() if status == "stopped"]
    if stopped:
        say(f"experiment {plan.name}: stopped before {stopped[0]}: the code changed under it; run it again")
    failed_runs = [name for name, status in statuses.items() if status == "failed"]
    if failed_runs:
        say(f"experiment {plan.name}: {len(failed_runs)} run(s) failed: {', '.join(failed_runs)}; see above")
    if failed:  # their runs are not lost: finished ones are kept, cut ones resume on the next call
        say(f"experiment {plan.name}: a worker failed; see {', '.join(failed)} in {places.work}")
    if failed or failed_runs or stopped:
        return 1
    say(f"results: {results / 'results.md'}, {results / 'results.csv'}")
    return 0
