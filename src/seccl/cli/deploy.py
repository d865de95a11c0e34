"""`seccl deploy local` (a whole deployment on 127.0.0.1) and `seccl deploy app` (its Flower app)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from seccl.cli.common import election_settings, positive, setup_command
from seccl.cli.options import Formatter
from seccl.election import ELECTION_RULES
from seccl.learning.data import DATASET_NAMES
from seccl.runs.config import ConfigError


def add_parser(sub: Any) -> None:
    deploy = sub.add_parser("deploy", help="run a deployed session", formatter_class=Formatter)
    actions = deploy.add_subparsers(dest="action", required=True, metavar="ACTION")
    local = actions.add_parser(
        "local",
        help="an anvil, a SuperLink and N SuperNodes on 127.0.0.1, one session through `flwr run`",
        description="Start, on 127.0.0.1 only, an anvil, a Flower SuperLink and one SuperNode per "
        "participant (each its own process, with its own key, data, chain URL and state), run a "
        "session through `flwr run`, and stop every process it started, however it ends.",
        formatter_class=Formatter,
    )
    local.add_argument("-n", "--participants", type=int, default=3, help="(default: 3)")
    local.add_argument("-r", "--rounds", type=int, default=2, help="(default: 2)")
    local.add_argument("--out", type=Path, metavar="DIR", help="(default: runs/deploy-nN-rR-seedS)")
    local.add_argument("--seed", type=int, default=0, help="(default: 0)")
    local.add_argument("--dataset", choices=DATASET_NAMES, default="mnist", help="(default: mnist)")
    local.add_argument("--per-participant", type=int, help="digits each (default: an equal share of all)")
    local.add_argument("-l", "--candidate-fraction", type=float, default=0.2, help="l (default: 0.2)")
    local.add_argument("--local-epochs", type=int, default=10, help="(default: 10)")
    local.add_argument(
        "--election",
        choices=ELECTION_RULES,
        default="borda",
        help="borda (the paper's) or gram-gate (docs/PROTOCOL.md §5b) (default: borda)",
    )
    local.add_argument(
        "--phase-seconds", type=int, default=300, help="each phase on the chain (default: 300)"
    )
    local.add_argument(
        "--phase-timeout",
        type=float,
        default=120.0,
        help="the least a participant is waited for before it is skipped (more while the chain "
        "still takes its message; default: 120)",
    )
    local.add_argument(
        "--server-attack", metavar="NAME", help="a malicious server, for trials (default: none)"
    )
    local.add_argument("--attack-target", type=int, default=0, help="its target participant (default: 0)")
    local.add_argument(
        "--insecure",
        action="store_true",
        help="for debugging only: Flower without TLS and without SuperNode authentication "
        "(by default the SuperLink serves TLS with a certificate made for the run, and accepts "
        "only the SuperNodes whose public keys were registered)",
    )
    local.set_defaults(handler=deploy_local)

    app = actions.add_parser(
        "app",
        help="write the Flower app directory `flwr run` ships (the roles are the seccl package's)",
        formatter_class=Formatter,
    )
    app.add_argument("app_dir", type=Path, metavar="DIR", help="where to write its pyproject.toml")
    app.set_defaults(handler=deploy_app)


@setup_command
def deploy_app(args: argparse.Namespace) -> int:
    from seccl.deploy.local import write_app

    print(
        f"Flower app written to {write_app(args.app_dir)}: `flwr run {args.app_dir} SUPERLINK "
        "--run-config SERVER.toml`"
    )
    return 0


@setup_command
def deploy_local(args: argparse.Namespace) -> int:
    from seccl.chain.bulletin_board import Phases
    from seccl.deploy.local import LocalDeployment
    from seccl.roles.adversaries.server import SERVER_ATTACKS
    from seccl.runs.directory import first_free

    if args.server_attack is not None and args.server_attack not in SERVER_ATTACKS:
        raise ConfigError(
            f"--server-attack: got {args.server_attack!r}; allowed: {', '.join(SERVER_ATTACKS)}"
        )
    n, rounds = positive(args.participants, "--participants"), positive(args.rounds, "--rounds")
    if n < 2:
        raise ConfigError(f"--participants: got {n}; allowed: 2 or more")
    out = args.out or first_free(Path("runs") / f"deploy-n{n}-r{rounds}-seed{args.seed}")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} is not empty: a deployment never overwrites another's files")
    phase = positive(args.phase_seconds, "--phase-seconds")
    started = time.perf_counter()
    with LocalDeployment(
        out,
        participants=n,
        rounds=rounds,
        seed=args.seed,
        dataset=args.dataset,
        per_participant=args.per_participant,
        candidate_fraction=args.candidate_fraction,
        settings=election_settings(positive(args.local_epochs, "--local-epochs"), args.election),
        phases=Phases(update=phase, ballot=phase, model=phase, reveal=phase),
        phase_timeout=args.phase_timeout,
        server_attack=args.server_attack,
        attack_target=args.attack_target,
        insecure=args.insecure,
    ) as deployment:
        print(f"deploying {n} participants on 127.0.0.1 in {out}", flush=True)
        deployment.start()
        print(f"anvil, a SuperLink and {n} SuperNodes running (pids {deployment.pids()}); `flwr run` …")
        record = deployment.run()
    rounds_done: list[dict[str, Any]] = list(record["rounds"])  # type: ignore[call-overload]
    for r in rounds_done:
        shown = "" if r["accuracy"] is None else f"accuracy {r['accuracy']:.4f}, "
        if r.get("macro_f1") is not None:
            shown += f"macro-F1 {r['macro_f1']:.4f}, "
        print(f"round {r['round']}: {shown}candidates {r['candidates']}, {r['seconds']:.1f} s")
    print(f"done in {time.perf_counter() - started:.0f} s; every process it started is stopped")
    print(
        f"server: {out / 'server' / 'records'} (a simulated run's records: metrics.json, metrics.csv, "
        "chain.json, the plots, models/round-NNNN.pt; and run.json, messages.sqlite, server.log)"
    )
    found = 0
    for i in range(n):
        state = out / f"participant-{i:04d}" / "state"
        evidence = (
            json.loads((state / "evidence.json").read_text()) if (state / "evidence.json").is_file() else []
        )
        found += len(evidence)
        print(f"participant {i}: {state} (evidence.json: {len(evidence)} findings; journal.sqlite, node.log)")
    return 1 if found else 0
