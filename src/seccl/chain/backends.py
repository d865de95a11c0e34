"""Chain backends: the embedded EVM (py-evm, in-process, the default) and any JSON-RPC node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlparse

import requests
from eth_tester import EthereumTester, PyEVMBackend
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from seccl.chain.errors import ChainUnavailableError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ChainBackend(Protocol):
    """Where the contracts live. Every party opens its own connection with :meth:`connect`."""

    name: str

    def connect(self) -> Web3:
        """A new connection to the chain, independent of everybody else's."""
        ...

    def server_account(self) -> str:
        """An unlocked, funded account the parameter server relays from."""
        ...

    def advance_time(self, seconds: int) -> None:
        """Move the chain's clock forward (to pass an election deadline in tests)."""
        ...


@dataclass
class EmbeddedChain:
    """An in-process EVM (eth-tester on py-evm): nothing to start, one block per transaction."""

    name: str = "embedded"
    tester: EthereumTester = field(default_factory=lambda: EthereumTester(PyEVMBackend()))

    def connect(self) -> Web3:
        return Web3(EthereumTesterProvider(self.tester))

    def server_account(self) -> str:
        return str(self.tester.get_accounts()[0])

    def advance_time(self, seconds: int) -> None:
        target = int(self.tester.get_block_by_number("latest")["timestamp"]) + seconds
        self.tester.time_travel(target)
        # py-evm's time travel lands one second short of the target on some blocks; mine up to it,
        # so the latest block's clock (what every caller reads) has passed it.
        while int(self.tester.get_block_by_number("latest")["timestamp"]) < target:
            self.tester.mine_blocks(1)


@dataclass
class RpcChain:
    """Any Ethereum JSON-RPC node (anvil here; geth or Besu in a deployment).

    The server relays from the node's first unlocked account.
    """

    url: str
    name: str = "rpc"
    timeout: float = 30.0
    saver: Callable[[], None] | None = None
    """Saves the chain durably (an anvil this run started); a node of its own keeps it anyway."""

    def persist(self) -> None:
        """Make everything mined so far survive a crash of this process."""
        if self.saver is not None:
            self.saver()

    def connect(self) -> Web3:
        session = requests.Session()
        if urlparse(self.url).hostname in LOOPBACK:
            # No proxy can stand between this process and a node on this machine; without this,
            # requests re-reads the proxy variables of the environment on every request: about a
            # third of a 20-participant round's chain time in a profile.
            session.trust_env = False
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": self.timeout}, session=session))
        if not w3.is_connected():
            raise ChainUnavailableError(f"no Ethereum JSON-RPC node answers at {self.url}")
        return w3

    def server_account(self) -> str:
        accounts = self.connect().eth.accounts
        if not accounts:
            raise ChainUnavailableError(
                f"the node at {self.url} has no unlocked account for the server to relay from"
            )
        return str(accounts[0])

    def advance_time(self, seconds: int) -> None:
        w3 = self.connect()
        w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
