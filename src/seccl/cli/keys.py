"""`seccl keys new`: a participant's or the server's own key, in an encrypted keystore."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seccl.cli.common import setup_command
from seccl.cli.options import Formatter


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="a participant's or the server's own key", formatter_class=Formatter)
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser(
        "new",
        help="write a fresh random key as an encrypted V3 keystore and print its address",
        formatter_class=Formatter,
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
    new.set_defaults(handler=keys_new)


def passphrase_file(key_file: Path, given: Path | None) -> Path:
    """The passphrase file of ``key_file``: the one given, or `passphrase` beside the keystore."""
    return given if given is not None else Path(key_file).parent / "passphrase"


@setup_command
def keys_new(args: argparse.Namespace) -> int:
    from seccl.deploy.setup import new_key

    passphrase = passphrase_file(args.key_file, args.passphrase_file)
    address = new_key(args.key_file, passphrase)
    print(address)
    print(f"keystore {args.key_file}, passphrase in {passphrase}: keep both private", flush=True)
    return 0
