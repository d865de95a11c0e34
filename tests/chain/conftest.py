"""Fixtures of the contract tests besides those of ``tests/conftest.py``."""

from __future__ import annotations

import pytest

from seccl.chain.backends import ChainBackend, EmbeddedChain


@pytest.fixture(scope="module")
def embedded() -> ChainBackend:
    """An embedded EVM of the test module's own (the property tests run their examples on it)."""
    return EmbeddedChain()
