"""The set-up and deployment commands: ``seccl keys new``, ``seccl session create``,
``seccl data split`` and ``seccl deploy local``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from seccl.chain.bulletin_board import Phases
from seccl.learning.data import DATASET_NAMES, SPLIT_SCHEMES
from seccl.roles.settings import LearningSettings

COMMANDS = ("keys", "session", "data", "deploy", "node")


class CommandError(ValueError):
    """A set-up or deployment command cannot do what it was asked (the message says why)."""


def add_commands(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add the four commands to the ``seccl`` parser's subcommands ``sub``."""
    keys = sub.add_parser("keys", help="a participant's or the server's own key", formatter_class=formatter)
    keys_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = keys_sub.add_parser(
        "new",
        help="write a fresh random key as an encrypted V3 keystore and print its address",
        formatter_class=formatter,
    )
    new.add_argument(
        "key_file", type=Path, metavar="KEY_FILE", help="where the keystore goes (never overwritten)"
    )
    new.add_argument(
        "--passphrase-file",
        type=Path,
        help="the passphrase's file; made with 256 random bits if missing (default: KEY_FILE's "
        "directory/passphrase)",
    )

    session = sub.add_parser(
        "session", help="a deployed session's contracts and file", formatter_class=formatter
    )
    session_sub = session.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = session_sub.add_parser(
        "create",
        help="deploy the contracts for a roster and write the session file every party checks",
        formatter_class=formatter,
    )
    create.add_argument("--chain", required=True, metavar="URL", help="the JSON-RPC node to deploy on")
    create.add_argument(
        "--server-key", required=True, type=Path, metavar="KEY_FILE", help="the server's keystore"
    )
    create.add_argument(
        "--passphrase-file", type=Path, help="its passphrase (default: its directory/passphrase)"
    )
    create.add_argument(
        "--roster", required=True, type=Path, metavar="FILE", help="the participants' addresses, one per line"
    )
    create.add_argument("--out", required=True, type=Path, metavar="FILE", help="the session file to write")
    create.add_argument("-r", "--rounds", type=int, default=10, help="rounds (default: 10)")
    create.add_argument(
        "--seed", type=int, default=0, help="the public seed of θ_0 and tie-breaking (default: 0)"
    )
    create.add_argument("-l", "--candidate-fraction", type=float, default=0.2, help="l (default: 0.2)")
    create.add_argument("--local-epochs", type=int, default=10, help="local epochs a round (default: 10)")
    create.add_argument(
        "--phase-seconds",
        type=int,
        default=300,
        help="length of each phase of a round on the chain (default: 300)",
    )
    create.add_argument(
        "--fund", action="store_true", help="fund every party from the node's first account (a dev chain)"
    )

    data = sub.add_parser("data", help="private data files for trials", formatter_class=formatter)
    data_sub = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    split = data_sub.add_parser(
        "split",
        help="split a data set into one private .npz per participant and a test.npz",
        formatter_class=formatter,
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

    node = sub.add_parser(
        "node", help="a participant's own process beside its SuperNode", formatter_class=formatter
    )
    node_sub = node.add_subparsers(dest="action", required=True, metavar="ACTION")
    watch = node_sub.add_parser(
        "watch",
        help="act on the chain's deadlines whether or not the server asks (post, vote, tally, accuse)",
        description="Run beside a participant's SuperNode, with the same settings as its node config: "
        "every few seconds, the checks the chain's clock has made due, so a silent or stalling "
        "server cannot keep the participant from posting its update, submitting its ballot, "
        "tallying the election or accusing a missing model. Ends when the session has ended.",
        formatter_class=formatter,
    )
    for flag, what in (
        ("--key-file", "its encrypted keystore"),
        ("--data", "its private data (.npz or an IDX directory)"),
        ("--chain-url", "its own JSON-RPC node"),
        ("--session", "the session file it agreed to"),
        ("--state-dir", "its state directory (shared with its ClientApp)"),
    ):
        watch.add_argument(flag, required=True, help=what)
    watch.add_argument(
        "--passphrase-file", help="its keystore's passphrase (default: $SECCL_KEYS_PASSPHRASE)"
    )
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between checks (default: 2)")

    check = node_sub.add_parser(
        "verify",
        help="confirm or refute a participant's findings from the chain, trusting neither side",
        formatter_class=formatter,
    )
    check.add_argument("evidence", type=Path, help="a participant's evidence.json")
    check.add_argument("--session", type=Path, required=True, help="the session file")
    check.add_argument("--chain", metavar="URL", help="a JSON-RPC node holding the session's chain")
    check.add_argument(
        "--chain-state",
        type=Path,
        help="or an anvil state file to reopen (default: chain/anvil-state.json next to the session file)",
    )

    deploy = sub.add_parser("deploy", help="run a deployed session", formatter_class=formatter)
    deploy_sub = deploy.add_subparsers(dest="action", required=True, metavar="ACTION")
    local = deploy_sub.add_parser(
        "local",
        help="an anvil, a SuperLink and N SuperNodes on 127.0.0.1, one session through `flwr run`",
        description="Start, on 127.0.0.1 only, an anvil, a Flower SuperLink and one SuperNode per "
        "participant (each its own process, with its own key, data, chain URL and state), run a "
        "session through `flwr run`, and stop every process it started, however it ends.",
        formatter_class=formatter,
    )
    app = deploy_sub.add_parser(
        "app",
        help="write the Flower app directory `flwr run` ships (the roles are the seccl package's)",
        formatter_class=formatter,
    )
    app.add_argument("app_dir", type=Path, metavar="DIR", help="where to write its pyproject.toml")
    local.add_argument("-n", "--participants", type=int, default=3, help="(default: 3)")
    local.add_argument("-r", "--rounds", type=int, default=2, help="(default: 2)")
    local.add_argument("--out", type=Path, metavar="DIR", help="(default: runs/deploy-nN-rR-seedS)")
    local.add_argument("--seed", type=int, default=0, help="(default: 0)")
    local.add_argument("--dataset", choices=DATASET_NAMES, default="mnist", help="(default: mnist)")
    local.add_argument("--per-participant", type=int, help="digits each (default: an equal share of all)")
    local.add_argument("-l", "--candidate-fraction", type=float, default=0.2, help="l (default: 0.2)")
    local.add_argument("--local-epochs", type=int, default=10, help="(default: 10)")
    local.add_argument(
        "--phase-seconds", type=int, default=300, help="each phase on the chain (default: 300)"
    )
    local.add_argument(
        "--phase-timeout",
        type=float,
        default=120.0,
        help="a silent participant is skipped after (default: 120)",
    )
    local.add_argument(
        "--server-attack", metavar="NAME", help="a malicious server, for trials (default: none)"
    )
    local.add_argument("--attack-target", type=int, default=0, help="its target participant (default: 0)")


def run_command(args: argparse.Namespace) -> int:
    """Run one of the four commands; raises :class:`CommandError` for what the user must fix."""
    from seccl.chain.errors import ChainError
    from seccl.deploy.data_files import DataFileError
    from seccl.deploy.local import DeployError
    from seccl.deploy.node import NodeConfigError
    from seccl.deploy.session_file import SessionFileError
    from seccl.deploy.verify import NodeVerifyError

    try:
        if args.command == "keys":
            return _keys_new(args)
        if args.command == "session":
            return _session_create(args)
        if args.command == "data":
            return _data_split(args)
        if args.command == "node":
            return _node_watch(args) if args.action == "watch" else _node_verify(args)
        if args.action == "app":
            from seccl.deploy.local import write_app

            print(
                f"Flower app written to {write_app(args.app_dir)}: `flwr run {args.app_dir} SUPERLINK "
                "--run-config SERVER.toml`"
            )
            return 0
        return _deploy_local(args)
    except (
        OSError,
        ChainError,
        DataFileError,
        DeployError,
        NodeConfigError,
        SessionFileError,
        NodeVerifyError,
        FileExistsError,
    ) as exc:
        raise CommandError(f"{args.command} {args.action}: {exc}") from None


def _passphrase_file(key_file: Path, given: Path | None) -> Path:
    return given if given is not None else Path(key_file).parent / "passphrase"


def _keys_new(args: argparse.Namespace) -> int:
    from seccl.deploy.setup import new_key

    passphrase = _passphrase_file(args.key_file, args.passphrase_file)
    address = new_key(args.key_file, passphrase)
    print(address)
    print(f"keystore {args.key_file}, passphrase in {passphrase}: keep both private", flush=True)
    return 0


def _roster(path: Path) -> list[str]:
    from eth_utils import is_address, to_checksum_address

    lines = [line.split("#")[0].strip() for line in Path(path).read_text().splitlines()]
    addresses = [line for line in lines if line]
    bad = [a for a in addresses if not is_address(a)]
    if bad:
        raise CommandError(f"--roster {path}: not addresses: {', '.join(bad)}")
    if len(addresses) < 2:
        raise CommandError(f"--roster {path}: a session needs at least 2 participants, got {len(addresses)}")
    return [to_checksum_address(a) for a in addresses]


def _session_create(args: argparse.Namespace) -> int:
    from seccl.deploy.setup import create_session

    phase = _positive(args.phase_seconds, "--phase-seconds")
    agreed = create_session(
        chain_url=args.chain,
        server_key=args.server_key,
        passphrase_file=_passphrase_file(args.server_key, args.passphrase_file),
        participants=_roster(args.roster),
        out=args.out,
        seed=args.seed,
        rounds=_positive(args.rounds, "--rounds"),
        candidate_fraction=args.candidate_fraction,
        settings=LearningSettings(local_epochs=_positive(args.local_epochs, "--local-epochs")),
        phases=Phases(update=phase, ballot=phase, model=phase),
        fund_parties=args.fund,
    )
    s = agreed.session
    print(f"session file {args.out}: board {s.board}, consensus {s.consensus}, chain id {s.chain_id}")
    print(f"{s.n} participants, M = {s.candidates}, {agreed.rounds} rounds, phases of {phase} s", flush=True)
    return 0


def _data_split(args: argparse.Namespace) -> int:
    from seccl.deploy.setup import split_data

    paths = split_data(
        dataset=args.dataset,
        participants=_positive(args.participants, "--participants"),
        out_dir=args.out,
        seed=args.seed,
        split=args.split,
        alpha=args.alpha,
        per_participant=args.per_participant,
        data_root=args.data_root,
    )
    print(f"{len(paths)} participant files and test.npz in {args.out}", flush=True)
    return 0


def _deploy_local(args: argparse.Namespace) -> int:
    from seccl.deploy.local import LocalDeployment
    from seccl.roles.malicious_server import SERVER_ATTACKS

    if args.server_attack is not None and args.server_attack not in SERVER_ATTACKS:
        raise CommandError(
            f"--server-attack: got {args.server_attack!r}; allowed: {', '.join(SERVER_ATTACKS)}"
        )
    n, rounds = _positive(args.participants, "--participants"), _positive(args.rounds, "--rounds")
    if n < 2:
        raise CommandError(f"--participants: got {n}; allowed: 2 or more")
    out = args.out or _fresh(Path("runs") / f"deploy-n{n}-r{rounds}-seed{args.seed}")
    if out.exists() and any(out.iterdir()):
        raise CommandError(f"--out {out} is not empty: a deployment never overwrites another's files")
    phase = _positive(args.phase_seconds, "--phase-seconds")
    started = time.perf_counter()
    with LocalDeployment(
        out,
        participants=n,
        rounds=rounds,
        seed=args.seed,
        dataset=args.dataset,
        per_participant=args.per_participant,
        candidate_fraction=args.candidate_fraction,
        settings=LearningSettings(local_epochs=_positive(args.local_epochs, "--local-epochs")),
        phases=Phases(update=phase, ballot=phase, model=phase),
        phase_timeout=args.phase_timeout,
        server_attack=args.server_attack,
        attack_target=args.attack_target,
    ) as deployment:
        print(f"deploying {n} participants on 127.0.0.1 in {out}", flush=True)
        deployment.start()
        print(f"anvil, a SuperLink and {n} SuperNodes running (pids {deployment.pids()}); `flwr run` …")
        record = deployment.run()
    rounds_done: list[dict[str, Any]] = list(record["rounds"])  # type: ignore[call-overload]
    for r in rounds_done:
        shown = "" if r["accuracy"] is None else f"accuracy {r['accuracy']:.4f}, "
        print(f"round {r['round']}: {shown}candidates {r['candidates']}, {r['seconds']:.1f} s")
    print(f"done in {time.perf_counter() - started:.0f} s; every process it started is stopped")
    print(f"server: {out / 'server' / 'records'} (run.json, models/final.pt, messages.sqlite, server.log)")
    found = 0
    for i in range(n):
        state = out / f"participant-{i:04d}" / "state"
        evidence = (
            json.loads((state / "evidence.json").read_text()) if (state / "evidence.json").is_file() else []
        )
        found += len(evidence)
        print(f"participant {i}: {state} (evidence.json: {len(evidence)} findings; journal.sqlite, node.log)")
    return 1 if found else 0


def _node_watch(args: argparse.Namespace) -> int:
    from seccl.deploy.node import NodeConfig, watch

    raw = {
        k: getattr(args, k.replace("-", "_"))
        for k in ("key-file", "data", "chain-url", "session", "state-dir")
    }
    raw["passphrase-file"] = args.passphrase_file or ""
    watch(NodeConfig.from_node_config(raw), interval=args.interval, log=lambda line: print(line, flush=True))
    return 0


def _node_verify(args: argparse.Namespace) -> int:
    """Print each finding's verdict; exit 1 if any is refuted."""
    from seccl.deploy.session_file import SessionFile
    from seccl.deploy.verify import open_chain, verify_node_evidence

    agreed = SessionFile.read(args.session)
    state = args.chain_state or Path(args.session).parent / "chain" / "anvil-state.json"
    with open_chain(args.chain, state) as backend:
        checked = verify_node_evidence(args.evidence, agreed, backend)
    for evidence, verdict in checked:
        print(f"{verdict.status.upper():<10} {evidence.summary()}\n           {verdict.reason}")
    refuted = sum(1 for _, v in checked if v.status == "refuted")
    print(f"{len(checked)} findings, {refuted} refuted" if checked else "no findings to verify")
    return 1 if refuted else 0


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise CommandError(f"{flag}: got {value}; allowed: 1 or more")
    return value


def _fresh(path: Path) -> Path:
    candidate, k = path, 2
    while candidate.exists():
        candidate, k = Path(f"{path}-{k}"), k + 1
    return candidate
