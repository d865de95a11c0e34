"""The run archive stores each signed message once, atomically, and survives being reopened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seccl.chain.accounts import new_account
from seccl.chain.bulletin_board import MessageKind
from seccl.chain.signing import SigningDomain
from seccl.learning.model import build_model, save_state_dict
from seccl.learning.sparse import select_top_fraction
from seccl.protocol.archive import RunArchive
from seccl.protocol.envelope import sign_message
from seccl.protocol.messages import UpdateMessage

DOMAIN = SigningDomain(1, "0x" + "11" * 20, "0x" + "22" * 20, b"\x33" * 32)


def signed_update(round_: int = 1):
    author = new_account()
    delta = np.random.default_rng(round_).normal(0, 0.01, 100).astype(np.float32)
    return sign_message(
        UpdateMessage(round_, author.address, select_top_fraction(delta, 0.1)), author, DOMAIN
    )


def test_a_message_is_stored_once_and_reads_back_byte_for_byte(tmp_path: Path) -> None:
    signed = signed_update()
    with RunArchive(tmp_path / "run.sqlite") as archive:
        assert archive.put(1, MessageKind.UPDATE, signed) is True
        assert archive.put(1, MessageKind.UPDATE, signed) is False  # offered twice, stored once
        assert archive.put(1, MessageKind.UPDATE, signed, tx_id="0xabc") is True  # the Tx-ID arrives later
        assert archive.put(1, MessageKind.UPDATE, signed, tx_id="0xdef") is False  # and is never rewritten
        assert len(archive) == 1

    with RunArchive(tmp_path / "run.sqlite") as reopened:
        stored = reopened.get(signed.digest())
        assert stored is not None
        assert stored.signed == signed and stored.tx_id == "0xabc"
        assert [m.signed for m in reopened.of_round(1, MessageKind.UPDATE)] == [signed]
        assert reopened.of_round(2) == []


def test_a_model_file_loads_back_in_one_line(tmp_path: Path) -> None:
    model = build_model(0)
    digest = save_state_dict(model, tmp_path / "models" / "round-0001.pt")

    loaded = torch.load(tmp_path / "models" / "round-0001.pt")

    assert len(digest) == 64
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]  # no temp file left
