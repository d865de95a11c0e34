"""A deployed round against a simulated one: the same session run by `seccl run` (one process,
the simulation) and by `seccl deploy local` (anvil, a Flower SuperLink, one SuperNode and one
long-lived participant process per participant, on 127.0.0.1), side by side in one run, at N = 3
and N = 10 (or the sizes given with --ns). Prints the deployed/simulated ratio of the median round
time of each (from each run's own records: the simulation's metrics.json, the deployment's
server/records/run.json), the target of issue 25 (at most 1.3), and where a deployed round's
extra time goes (from the participants' node.log: how long before forwarding each message its
ClientApp process had been starting, and how long the participant itself took).

A measurement, not a test: nothing here fails on a slow machine.

    python bench/deploy.py                       # N = 3 and 10, 3 rounds, the CLI's data and epochs
    python bench/deploy.py --ns 3 --per-participant 100 --local-epochs 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECCL = str(Path(sys.executable).parent / "seccl")
TARGET = 1.3
LOG_LINE = re.compile(r"answered in ([0-9.]+) s; its ClientApp process started ([0-9.]+) s before")


def session_options(args: argparse.Namespace, n: int) -> list[str]:
    """The options that make the session: the same for both runs."""
    options = ["-n", str(n), "-r", str(args.rounds), "--seed", str(args.seed)]
    options += ["--local-epochs", str(args.local_epochs), "-l", str(args.candidate_fraction)]
    if args.per_participant is not None:
        options += ["--per-participant", str(args.per_participant)]
    return options


def run(command: list[str], log: Path) -> float:
    """Run ``command`` with its output in ``log``; its wall time, or SystemExit if it failed."""
    started = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}; see {log}")
    return time.perf_counter() - started


def simulated(args: argparse.Namespace, n: int, out: Path) -> dict:
    command = [SECCL, "run", *session_options(args, n), "--out", str(out), "--no-progress"]
    wall = run(command, out.with_suffix(".log"))
    rounds = json.loads((out / "metrics.json").read_text())["rounds"]
    seconds, accuracy = [r["seconds"] for r in rounds], [r["accuracy"] for r in rounds]
    return {"wall": wall, "seconds": seconds, "accuracy": accuracy}


def deployed(args: argparse.Namespace, n: int, out: Path) -> dict:
    command = [SECCL, "deploy", "local", *session_options(args, n), "--out", str(out)]
    command += ["--phase-seconds", str(args.phase_seconds), "--phase-timeout", str(args.phase_timeout)]
    wall = run(command, out.with_suffix(".log"))
    rounds = json.loads((out / "server" / "records" / "run.json").read_text())["rounds"]
    work, startup = [], []
    for log in sorted(out.glob("participant-*/state/node.log")):
        for match in LOG_LINE.finditer(log.read_text()):
            work.append(float(match[1]))
            startup.append(float(match[2]))
    return {
        "wall": wall,
        "seconds": [r["seconds"] for r in rounds],
        "accuracy": [r["accuracy"] for r in rounds],
        "dropouts": sum(len(r["dropouts"]) for r in rounds),
        "work": work,
        "startup": startup,
    }


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--ns", default="3,10", help="participant counts, comma-separated (default: 3,10)")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds of each run (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-participant", type=int, help="digits each (default: an equal share of all)")
    parser.add_argument("--local-epochs", type=int, default=10, help="(default: 10, the CLI's)")
    parser.add_argument("-l", "--candidate-fraction", type=float, default=0.2)
    parser.add_argument("--phase-seconds", type=int, default=300, help="the deployment's (default: 300)")
    parser.add_argument("--phase-timeout", type=float, default=240.0, help="the deployment's (default: 240)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep both runs' directories in DIR")
    args = parser.parse_args()
    ns = [int(n) for n in args.ns.split(",")]

    work_dir = Path(tempfile.mkdtemp(prefix="seccl-bench-deploy-")) if args.keep is None else args.keep
    work_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"{args.rounds} rounds, seed {args.seed}, {args.local_epochs} local epochs, "
        f"{args.per_participant or 'an equal share of the'} digits each; {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}; runs in {work_dir}",
        flush=True,
    )
    rows = []
    try:
        for n in ns:
            sim = simulated(args, n, work_dir / f"simulated-n{n}")
            dep = deployed(args, n, work_dir / f"deployed-n{n}")
            ratio = statistics.median(dep["seconds"]) / statistics.median(sim["seconds"])
            rows.append((n, sim, dep, ratio))
            same = "same" if sim["accuracy"] == dep["accuracy"] else "DIFFERENT"
            print(
                f"N = {n:>2}: simulated rounds {sim['seconds']} s, deployed rounds {dep['seconds']} s "
                f"({dep['dropouts']} dropouts; accuracy per round {same}: {dep['accuracy']})",
                flush=True,
            )
            if dep["startup"]:
                print(
                    f"        deployed, per message: its ClientApp process started a median "
                    f"{statistics.median(dep['startup']):.2f} s before forwarding it (max "
                    f"{max(dep['startup']):.2f} s); the participant answered in a median "
                    f"{statistics.median(dep['work']):.2f} s ({len(dep['work'])} messages)",
                    flush=True,
                )
    finally:
        if args.keep is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print("\n    N   simulated round   deployed round   deployed/simulated   target")
    for n, sim, dep, ratio in rows:
        verdict = "met" if ratio <= TARGET else "missed"
        simulated_round, deployed_round = statistics.median(sim["seconds"]), statistics.median(dep["seconds"])
        print(
            f"  {n:>3}   {simulated_round:>13.2f} s   {deployed_round:>12.2f} s"
            f"   {ratio:>18.2f}   ≤ {TARGET} {verdict}"
        )
    print("(median round seconds of each run's records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
