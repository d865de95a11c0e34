"""Shared fixtures: chain backends (embedded EVM and a real anvil node) and deterministic keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from seccl.chain.anvil import AnvilNode
from seccl.chain.backends import ChainBackend, EmbeddedChain


def make_accounts(n: int, tag: str = "participant") -> list[LocalAccount]:
    """``n`` deterministic participant keys (the same for every run)."""
    return [Account.from_key(keccak(text=f"seccl-test-{tag}-{i}")) for i in range(n)]


@pytest.fixture(scope="session")
def anvil_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainBackend]:
    with AnvilNode(tmp_path_factory.mktemp("anvil") / "state.json") as node:
        yield node.backend()


@pytest.fixture(
    scope="session", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]
)
def backend(request: pytest.FixtureRequest) -> ChainBackend:
    """Every contract test runs on the embedded EVM and on a real anvil node."""
    if request.param == "anvil":
        return request.getfixturevalue("anvil_backend")
    return EmbeddedChain()
