"""Typed client of the GramGateConsensus contract: the consensus contract of the hardened
``gram-gate`` election (:mod:`seccl.election.gram_gate`). Relay ballots, tally, read elections and
the view a majority agreed on; the same methods as :class:`~seccl.chain.consensus.ConsensusClient`
where the two contracts share them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3

from seccl.chain.consensus import ElectionClient, encode_scores
from seccl.chain.transactions import TxReceipt, event_in_transaction, transact


def gas_for_ballot(n: int) -> int:
    """A gas limit for one ballot of ``n`` entries: calldata, the signature, an O(n) check, the
    view's count and its scores in ⌈n/12⌉ words (measured: about 93k at n = 10, 150k at 30, and
    80k more for a round's first ballot)."""
    return 200_000 + 5_000 * n


BLOCK_GAS_CAP = 29_000_000
"""A transaction must fit a block (30M gas on both EVMs here): no limit asks for more."""


def gas_for_tally(n: int) -> int:
    """A gas limit for a tally of ``n`` participants: ⌈n/12⌉ words of each counted ballot and an
    upper median per kept participant by selection, expected O(n) steps and O(n²) at worst, so
    O(n²) in all and O(n³) at worst (measured: 169k at n = 10, 758k at 30, every one kept)."""
    return min(250_000 + 1_000 * n * n + 20 * n**3, BLOCK_GAS_CAP)


class GramGateConsensusClient(ElectionClient):
    """A connection to one deployed GramGateConsensus contract, writing (when it writes) from
    ``sender``. Ballots carry the voter's view in their entries (``DROPPED``, ``REJECTED``,
    ``ABSTAIN``, scores); there is no ranking."""

    artifact = "GramGateConsensus"
    rule = "gram-gate"

    @classmethod
    def deploy(
        cls, w3: Web3, *, server: str, board: str, candidates: int, assumed_attackers: int
    ) -> tuple[GramGateConsensusClient, TxReceipt]:
        """Deploy a gram-gate election of ``candidates`` per round, whose filter every party sizes
        for ``assumed_attackers``, for the session of ``board``, which must already name the
        address this deployment gets."""
        return cls._deploy_contract(w3, server, to_checksum_address(board), candidates, assumed_attackers)

    # ─────────────── writes (anyone) ───────────────

    def submit_scores(
        self,
        round_: int,
        voter: str,
        scores: Sequence[int],
        signature: bytes,
        *,
        ranking: Sequence[int] | None = None,
    ) -> TxReceipt:
        """Relay ``voter``'s signed ballot entries (its evaluation message's body: a big-endian
        u32 each, by index). ``ranking`` is ignored: it is there so that callers treat this client
        and the Borda count's alike."""
        function = self.contract.functions.submitScores(
            round_, to_checksum_address(voter), encode_scores(scores), signature
        )
        return transact(self.w3, function, sender=self._sender(), gas=gas_for_ballot(len(scores)))[0]

    # ─────────────── reads (anyone) ───────────────

    def assumed_attackers(self) -> int:
        """f, the attackers every party's filter is sized for (fixed at deployment)."""
        return int(self._call(self.contract.functions.assumedAttackers()))

    def rule_name(self) -> str:
        """The rule the contract at this address says it counts by (``"gram-gate"``)."""
        return str(self._call(self.contract.functions.rule()))

    def view_votes(self, round_: int, view_digest: bytes) -> int:
        """How many ballots of ``round_`` state the view ``view_digest``."""
        return int(self._call(self.contract.functions.viewVotes(round_, view_digest)))

    def agreed_view_of(self, round_: int) -> tuple[int, int, int] | None:
        """The view a strict majority of the roster agreed on in ``round_`` as (kept bitmap,
        dropped bitmap, votes), or None without a majority (raises ``ConsensusNotTallied``
        before the tally)."""
        agreed, kept, dropped, votes = self._call(self.contract.functions.agreedViewOf(round_))
        return (int(kept), int(dropped), int(votes)) if agreed else None

    def view_agreed_record(self, round_: int, *, from_block: int = 0) -> tuple[bytes, int, int, int] | None:
        """The ViewAgreed record of ``round_`` as (view key, kept, dropped, votes), from its event
        (logs scanned from ``from_block``), or None (not tallied, or no majority)."""
        logs = self.contract.events.ViewAgreed().get_logs(
            from_block=from_block, argument_filters={"round": round_}
        )
        return _view_agreed(logs[-1]["args"]) if logs else None

    def view_agreed_in_transaction(self, tx_hash: str) -> tuple[bytes, int, int, int] | None:
        """The ViewAgreed record the tally ``tx_hash`` logged, or None (O(1): one receipt)."""
        args = event_in_transaction(self.w3, tx_hash, self.contract.events.ViewAgreed)
        return None if args is None else _view_agreed(args)

    def _gas_for_tally(self, n: int) -> int:
        return gas_for_tally(n)


def _view_agreed(args: Any) -> tuple[bytes, int, int, int]:
    return bytes(args["viewDigest"]), int(args["kept"]), int(args["dropped"]), int(args["votes"])
