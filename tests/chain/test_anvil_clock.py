"""A chain reloaded into anvil keeps its own clock: it goes on from its last block, whether the
wall clock moved on meanwhile (a run paused for hours) or lies behind it (a simulation moved it)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from web3 import Web3

from seccl.chain.anvil import AnvilNode

pytestmark = pytest.mark.anvil

HOURS = 3 * 3600  # longer than a phase (an hour): had the clock jumped, every open phase would close


def last_block_time_after(node: AnvilNode, set_time: int | None = None) -> int:
    w3 = Web3(Web3.HTTPProvider(node.url))
    if set_time is not None:
        w3.provider.make_request("evm_setTime", [set_time])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return int(w3.eth.get_block("latest")["timestamp"])


@pytest.mark.parametrize("offset", [-HOURS, HOURS], ids=["paused", "moved-forward"])
def test_a_reloaded_chain_goes_on_from_its_last_block(tmp_path: Path, offset: int) -> None:
    state = tmp_path / "anvil-state.json"
    with AnvilNode(state) as node:
        stopped = last_block_time_after(node, set_time=int(time.time()) + offset)

    with AnvilNode(state) as node:
        resumed = last_block_time_after(node)

    assert stopped < resumed <= stopped + 60  # seconds of start-up, not the hours between
