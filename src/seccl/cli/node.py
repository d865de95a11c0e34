"""`seccl node watch` and `seccl node verify`: a participant's own process beside its SuperNode."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seccl.cli.common import setup_command
from seccl.cli.options import Formatter
from seccl.runs.config import ConfigError

# The flags of `seccl node watch` that are the keys of a SuperNode's node config.
_NODE_CONFIG = ("key-file", "data", "chain-url", "session", "state-dir")


def add_parser(sub: Any) -> None:
    node = sub.add_parser(
        "node", help="a participant's own process beside its SuperNode", formatter_class=Formatter
    )
    actions = node.add_subparsers(dest="action", required=True, metavar="ACTION")
    watch = actions.add_parser(
        "watch",
        help="the participant's own process: answers its SuperNode's messages, and acts on the "
        "chain's deadlines whether or not the server asks (post, vote, tally, accuse)",
        description="Run beside a participant's SuperNode, with the same settings as its node config. "
        "It holds the participant (its key, data and chain connection, loaded once) and answers "
        "the messages the SuperNode's ClientApp forwards to it over a socket in the state "
        "directory (STATE_DIR/node.sock, 0600; the ClientApp refuses every message while this "
        "process is not running). Every few seconds it runs the checks the chain's clock has made "
        "due, so a silent or stalling server cannot keep the participant from posting its update, "
        "submitting its ballot, tallying the election or accusing a missing model. Ends when the "
        "session has ended (after the server's final model, or 10 minutes after its last check).",
        formatter_class=Formatter,
    )
    for flag, what in zip(
        _NODE_CONFIG,
        (
            "its encrypted keystore",
            "its private data (.npz or an IDX directory)",
            "its own JSON-RPC node",
            "the session file it agreed to",
            "its state directory (shared with its ClientApp)",
        ),
        strict=True,
    ):
        watch.add_argument(f"--{flag}", required=True, help=what)
    watch.add_argument(
        "--passphrase-file", help="its keystore's passphrase (default: $SECCL_KEYS_PASSPHRASE)"
    )
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between checks (default: 2)")
    watch.add_argument(
        "--chain-wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up (exit 2) if chain-url has not answered once within SECONDS; the session "
        "file is waited for as long as it takes (default: 120)",
    )
    watch.set_defaults(handler=node_watch)

    check = actions.add_parser(
        "verify",
        help="confirm or refute a participant's findings from the chain, trusting neither side",
        formatter_class=Formatter,
    )
    check.add_argument("evidence", type=Path, help="a participant's evidence.json")
    check.add_argument("--session", type=Path, required=True, help="the session file")
    check.add_argument("--chain", metavar="URL", help="a JSON-RPC node holding the session's chain")
    check.add_argument(
        "--chain-state",
        type=Path,
        help="or an anvil state file to reopen (default: chain/anvil-state.json next to the session file)",
    )
    check.set_defaults(handler=node_verify)


@setup_command
def node_watch(args: argparse.Namespace) -> int:
    from seccl.deploy.node import CHAIN_WAIT, NodeConfig, watch

    raw = {key: getattr(args, key.replace("-", "_")) for key in _NODE_CONFIG}
    raw["passphrase-file"] = args.passphrase_file or ""
    wait = CHAIN_WAIT if args.chain_wait is None else args.chain_wait
    if not (wait >= 0 and args.interval > 0):  # also refuses NaN
        flag, value = ("--chain-wait", wait) if not wait >= 0 else ("--interval", args.interval)
        allowed = "0 or more" if flag == "--chain-wait" else "more than 0"
        raise ConfigError(f"node watch: {flag}: got {value:g}; allowed: {allowed} seconds")
    watch(
        NodeConfig.from_node_config(raw),
        interval=args.interval,
        log=lambda line: print(line, flush=True),
        chain_wait=wait,
    )
    return 0


@setup_command
def node_verify(args: argparse.Namespace) -> int:
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
