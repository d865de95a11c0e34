"""`seccl session create`: deploy a session's contracts for a roster and write the file every party checks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seccl.cli.common import election_settings, positive, setup_command
from seccl.cli.keys import passphrase_file
from seccl.cli.options import Formatter
from seccl.election import ELECTION_RULES


def add_parser(sub: Any) -> None:
    session = sub.add_parser(
        "session", help="a deployed session's contracts and file", formatter_class=Formatter
    )
    actions = session.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="deploy the contracts for a roster and write the session file every party checks",
        formatter_class=Formatter,
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
    create.add_argument("--seed", type=int, default=0, help="the public seed of θ_0 (default: 0)")
    create.add_argument("-l", "--candidate-fraction", type=float, default=0.2, help="l (default: 0.2)")
    create.add_argument("--local-epochs", type=int, default=10, help="local epochs a round (default: 10)")
    create.add_argument(
        "--election",
        choices=ELECTION_RULES,
        default="borda",
        help="borda (the paper's) or gram-gate (docs/PROTOCOL.md §5b) (default: borda)",
    )
    create.add_argument(
        "--phase-seconds",
        type=int,
        default=300,
        help="length of each phase of a round on the chain (default: 300)",
    )
    create.add_argument(
        "--fund", action="store_true", help="fund every party from the node's first account (a dev chain)"
    )
    create.set_defaults(handler=session_create)


@setup_command
def session_create(args: argparse.Namespace) -> int:
    from seccl.chain.bulletin_board import Phases
    from seccl.deploy.setup import create_session, read_roster

    phase = positive(args.phase_seconds, "--phase-seconds")
    agreed = create_session(
        chain_url=args.chain,
        server_key=args.server_key,
        passphrase_file=passphrase_file(args.server_key, args.passphrase_file),
        participants=read_roster(args.roster),
        out=args.out,
        seed=args.seed,
        rounds=positive(args.rounds, "--rounds"),
        candidate_fraction=args.candidate_fraction,
        settings=election_settings(positive(args.local_epochs, "--local-epochs"), args.election),
        phases=Phases(update=phase, ballot=phase, model=phase, reveal=phase),
        fund_parties=args.fund,
    )
    s = agreed.session
    print(f"session file {args.out}: board {s.board}, consensus {s.consensus}, chain id {s.chain_id}")
    print(f"{s.n} participants, M = {s.candidates}, {agreed.rounds} rounds, phases of {phase} s", flush=True)
    return 0
