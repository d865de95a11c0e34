"""Fixtures of the contract tests besides those of ``tests/conftest.py``."""

from __future__ import annotations

import pytest

from seccl.chain.backends import ChainBackend, EmbeddedChain


@pytest.fixture(scope="module")
def embedded() -> ChainBackend:
    """An embedded EVM of the test module's own (the property tests run their examples on it)."""
    return EmbeddedChain()


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def own_backend(request: pytest.FixtureRequest) -> ChainBackend:
    """A chain of the test module's own, on both EVMs: the session-wide embedded EVM grows with
    every contract test of its worker, and py-evm's log queries scan every block (measured in CI:
    one gram-gate test took 23 minutes at the end of a long worker, 0.2 s alone)."""
    if request.param == "anvil":
        return request.getfixturevalue("anvil_backend")
    return EmbeddedChain()
