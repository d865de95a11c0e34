"""The participant's checks against the chain: of what the server hands it, and after each phase."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np

from seccl.chain.bulletin_board import MessageKind
from seccl.chain.errors import ContractRevert
from seccl.election.gram_gate import HISTORY_ROUNDS
from seccl.learning.aggregation import aggregate
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.eligible import eligible_updates
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.errors import MalformedMessageError, ProtocolError
from seccl.protocol.evidence import EvidenceKind
from seccl.protocol.messages import (
    EvaluationMessage,
    ModelMessage,
    UpdateMessage,
    decode_message,
    invalid_entry,
)
from seccl.protocol.statements import Delivery, Receipt
from seccl.roles.participant_state import ParticipantState


class ChainChecks(ParticipantState):
    """The checks every participant runs over its own connection, the same for honest and
    malicious ones: the chain, not the server, is the record it trusts."""

    if TYPE_CHECKING:
        # The round itself is Participant's: an after-phase check falls back on it when the
        # server never asked for this participant's update or ballot.
        def _train(self, round_: int) -> SignedMessage | None: ...

        def _evaluation(self, round_: int) -> SignedMessage | None: ...

    # ─────────────── the participant's own checks after each phase (the runtime calls them) ───────────────

    def after_updates(self, round_: int) -> None:
        """Is my commitment on the board? If the server never asked for it or did not post it, post
        it myself while the phase is open."""
        if self._round != round_:
            self._reset(round_)
        if not self._trained:
            if self.board.current_round() != round_:
                return  # a round the chain has closed (replayed after a crash): nothing to sign
            self._train(round_)
            if self._own_update is not None:
                self._report(
                    EvidenceKind.SERVER_SILENT,
                    self.session.server,
                    None,
                    None,
                    None,
                    "the server never asked for this round's update; trained from the trusted model",
                )
        own = self._own_update
        if own is None or self.board.digest_of(round_, MessageKind.UPDATE, self.address) == own.digest():
            return
        try:
            receipt = self.board.post_update(round_, self.address, own.digest(), own.signature)
        except ContractRevert as exc:
            self._report(
                EvidenceKind.SERVER_SILENT,
                self.session.server,
                exc.tx_hash,
                own.digest(),
                None,
                f"the commitment was not relayed and could not be posted directly: {exc}",
            )
            return
        self._report(
            EvidenceKind.SERVER_SILENT,
            self.session.server,
            receipt.tx_hash,
            own.digest(),
            own.digest(),
            "the server did not post this commitment; the participant posted it itself",
        )

    def after_commitments(self, round_: int) -> None:
        """Once the commitments have closed, reveal my committed update's bytes on the board myself,
        over my own connection: nobody else holds them, and nobody else need be trusted with them."""
        if self._round != round_:
            self._reset(round_)
        own = self._own_update or self._recall(round_, MessageKind.UPDATE)
        if own is None or self.board.digest_of(round_, MessageKind.UPDATE, self.address) != own.digest():
            return  # nothing committed (any reason is reported already)
        info = self.board.round_info(round_)
        if info.has_revealed(self.index) or info.model_posted or self._now() > info.reveal_deadline:
            return  # done, or too late to try (a failed attempt is reported already)
        try:
            self.board.reveal_update(round_, self.address, own.data)
        except ContractRevert as exc:
            # Its own failure (too late, most likely), visible on the chain: it is not eligible.
            self._report(
                EvidenceKind.SAT_OUT,
                self.address,
                exc.tx_hash,
                own.digest(),
                None,
                f"the update could not be revealed: {exc}",
            )

    def after_ballots(self, round_: int) -> None:
        """Was my ballot counted? If not (never asked, not relayed, altered), submit it myself."""
        if self._params is None or self.consensus.has_voted(round_, self.address):
            return
        asked = self._own_evaluation is not None
        own = self._evaluation(round_)
        if own is None:
            return
        message = decode_message(own.data)
        assert isinstance(message, EvaluationMessage)
        try:
            receipt = self.consensus.submit_scores(round_, self.address, message.scores, own.signature)
        except ContractRevert as exc:
            self._report(
                EvidenceKind.SERVER_SILENT,
                self.session.server,
                exc.tx_hash,
                own.digest(),
                None,
                f"the ballot was not counted and could not be submitted directly: {exc}",
            )
            return
        what = "relayed" if asked else "asked for"
        self._report(
            EvidenceKind.SERVER_SILENT,
            self.session.server,
            receipt.tx_hash,
            own.digest(),
            own.digest(),
            f"the server never {what} this ballot; the participant submitted it itself",
        )

    def after_election(self, round_: int) -> None:
        """Is the election tallied? Once every ballot is in or the ballot phase is over, anyone
        may tally, so a server that stalls cannot hold the election open: I tally myself."""
        election = self.consensus.election_of(round_)
        if election.tallied:
            return
        if election.ballots == self.session.n or self._now() > self.board.round_info(round_).ballot_deadline:
            with contextlib.suppress(ContractRevert):  # someone else tallied in between
                self.consensus.tally(round_, n=self.session.n)

    def after_model(self, round_: int) -> bool:
        """Is θ_r on the board, and is it the aggregate of the elected candidates? Returns whether
        it is posted; once its deadline has passed without it, accuse the server on-chain."""
        info = self.board.round_info(round_)
        if not info.model_posted:
            if info.opened_at and self._now() > info.model_deadline:
                tx: str | None
                try:
                    tx = self.board.accuse_missing_model(round_).tx_hash
                except ContractRevert as exc:
                    tx = exc.tx_hash
                self._report(
                    EvidenceKind.MODEL_NOT_POSTED,
                    self.session.server,
                    tx,
                    None,
                    None,
                    f"the model of round {round_} was not posted by its deadline {info.model_deadline}",
                )
            return False
        recorded = self.board.digest_of(round_, MessageKind.MODEL, self.session.server)
        updates = self._candidate_updates(round_)
        if self._params is None or updates is None:
            self._params = None  # wait for the delivered model, checked against the board
            return True
        expected = ModelMessage(
            round_, self.session.server, aggregate(self._params, updates, rule=self.settings.aggregation)
        )
        board = self._board_model
        if board is not None and board[0] == round_ - 1:
            # The provable check: the board's θ_{r-1} and the candidates' recorded updates must give
            # the board's θ_r (the same computation as above unless the server already cheated).
            same = np.array_equal(board[1], self._params)
            claimed = (
                expected
                if same
                else ModelMessage(
                    round_, self.session.server, aggregate(board[1], updates, rule=self.settings.aggregation)
                )
            )
            if claimed.digest() != recorded:
                own = {self.index: self._own_update} if self._own_update is not None else {}
                signed = {**self._invalid, **{j: s for j, (_, s) in self._verified.items()}, **own}
                self._report(
                    EvidenceKind.MODEL_NOT_AGGREGATED,
                    self.session.server,
                    None,
                    claimed.digest(),
                    recorded,
                    f"the model of round {round_} is not the aggregate of the candidates the consensus "
                    "contract elected",
                    proof={
                        "previous_model": board[2].to_dict(),
                        "updates": [signed[c].to_dict() for c in self.consensus.elected_of(round_)],
                    },
                )
        # Continue from the model SecCL's rules define, whatever the server did.
        self._params = expected.params
        if expected.digest() == recorded:
            self._board_model = (round_, expected.params, SignedMessage(expected.to_bytes(), b""))
        return True

    # ─────────────── checks against the chain ───────────────

    def _check_delivered_model(
        self, model_round: int, signed: SignedMessage, delivery: Delivery
    ) -> np.ndarray | None:
        """The delivered θ of ``model_round`` if it is the one the board records (else evidence)."""
        server = self.session.server
        recorded = self.board.digest_of(model_round, MessageKind.MODEL, server)
        signed_ok = delivery.signer(self.session.domain) == server and delivery.authors == (server,)
        if signed_ok and delivery.digests[0] != recorded and delivery.round == model_round:
            self._report(
                EvidenceKind.MODEL_MISMATCH,
                server,
                self._accuse(delivery, 0),
                delivery.digests[0],
                recorded,
                f"the server signed for a model of round {model_round} other than the one the board records",
                proof={"delivery": delivery.to_dict(), "position": 0},
            )
            return None
        if signed.digest() != recorded:
            if self._params is None:
                self._report(
                    EvidenceKind.UNSIGNED_DELIVERY,
                    server,
                    None,
                    signed.digest(),
                    recorded,
                    f"the model bytes of round {model_round} do not match the board",
                )
            return None
        try:
            message = decode_message(signed.data, dimension=self.session.dimension)
        except ProtocolError:
            return None
        return message.params if isinstance(message, ModelMessage) else None

    def _accuse(self, delivery: Delivery, position: int) -> str | None:
        """File the server's signed ``delivery`` as an on-chain accusation: the board compares it
        with its own record and, where they differ, records the server as caught. Returns the
        accusation's Tx-ID (None if the chain refused it, which the evidence then shows)."""
        try:
            return self.board.accuse_delivery(
                delivery.round,
                delivery.kind,
                delivery.recipient,
                delivery.authors,
                delivery.digests,
                position,
                delivery.signature,
            ).tx_hash
        except ContractRevert:
            return None

    def _check_receipt(self, receipt: Receipt, kind: MessageKind, own: SignedMessage) -> None:
        if receipt.signer(self.session.domain) != self.session.server or receipt.digest != own.digest():
            return  # not the server's word about this message: proves nothing either way
        if kind is MessageKind.UPDATE:
            record = self.board.record_in_transaction(receipt.tx_id) if receipt.tx_id else None
            holds = record is not None and (record.round, record.author, record.digest) == (
                receipt.round,
                self.address,
                own.digest(),
            )
            evidence = EvidenceKind.UPDATE_NOT_RECORDED
        else:
            ballot = self.consensus.ballot_in_transaction(receipt.tx_id) if receipt.tx_id else None
            holds = ballot is not None and (ballot.voter, ballot.digest) == (self.address, own.digest())
            evidence = EvidenceKind.BALLOT_NOT_COUNTED
        if not holds:
            self._report(
                evidence,
                self.address,
                receipt.tx_id,
                own.digest(),
                None,
                f"the server signed a receipt for this {kind.name.lower()} citing a transaction "
                "that does not record it",
                proof={"receipt": receipt.to_dict()},
            )

    def _read_reveals(self, round_: int) -> None:
        """Read every other participant's revealed update of ``round_`` from the board, over my own
        connection; prove on chain each that breaks the rules (so nobody may elect it)."""
        if self._reveals_read:
            return
        self._reveals_read = True
        info = self.board.round_info(round_)
        revealed = self.board.revealed_updates(round_)
        committed = self.board.updates_of(round_) if info.update_bitmap != info.reveal_bitmap else []
        for j, author in enumerate(self.session.participants):
            if j != self.index and info.has_update(j) and not info.has_revealed(j):
                self._report(
                    EvidenceKind.UPDATE_NOT_REVEALED,
                    author,
                    None,
                    None,
                    committed[j],
                    "committed an update but never revealed it: not eligible (its own failure)",
                )
            found = revealed.get(author)
            if found is None or not info.has_revealed(j):
                continue
            if j == self.index:
                # My own update as the board holds it: what every other party filters and counts,
                # also after a restart that lost it from memory.
                with contextlib.suppress(ProtocolError):  # mine is invalid: not eligible anyway
                    own = decode_message(found.message, **self.session.bounds())
                    if isinstance(own, UpdateMessage):
                        self._own_revealed = own.update
                continue
            signed = SignedMessage(found.message, b"")  # the board checked the author's signature
            update = self._decode_update(round_, author, signed, found.tx_hash)
            if update is not None:
                self._verified[j] = (update, signed)
                continue
            self._invalid[j] = signed
            if not info.is_invalid(j):
                self._prove_invalid(round_, author, found.message)

    def eligible_updates(self, round_: int) -> dict[int, SparseUpdate]:
        """Round ``round_``'s eligible updates (revealed, not proven invalid), as remembered from
        that round or read back from the board over my own connection."""
        remembered = self._eligible_by_round.get(round_)
        if remembered is not None:
            return remembered
        found = eligible_updates(self.session, self.board, round_)
        self.remember_eligible(round_, found)
        return found

    def remember_eligible(self, round_: int, updates: dict[int, SparseUpdate]) -> None:
        """Keep ``round_``'s eligible updates for the next rounds' filters (only the last few)."""
        self._eligible_by_round[round_] = dict(updates)
        for old in [r for r in self._eligible_by_round if r <= round_ - HISTORY_ROUNDS]:
            del self._eligible_by_round[old]

    def _prove_invalid(self, round_: int, author: str, message: bytes) -> None:
        s = self.session
        position = invalid_entry(
            message, dimension=s.dimension, update_size=s.update_size, max_abs_value=s.max_abs_value
        )
        if position is None:
            return
        with contextlib.suppress(ContractRevert):  # another party proved it first
            self.board.prove_invalid(round_, author, message, position)

    def _decode_update(
        self, round_: int, author: str, signed: SignedMessage, tx_id: str | None = None
    ) -> SparseUpdate | None:
        """The update in ``author``'s recorded bytes, or None (with evidence against the author)."""
        try:
            message = decode_message(signed.data, **self.session.bounds())
            if not isinstance(message, UpdateMessage) or (message.round, message.author) != (round_, author):
                raise MalformedMessageError(f"the recorded bytes are not {author}'s update of round {round_}")
        except ProtocolError as exc:
            self._report(
                EvidenceKind.INVALID_MESSAGE,
                author,
                tx_id,
                signed.digest(),
                signed.digest(),
                f"{type(exc).__name__}: {exc}",
                proof={"message": signed.to_dict()},
            )
            return None
        return message.update

    def _candidate_updates(self, model_round: int) -> list[SparseUpdate] | None:
        """The elected candidates' valid updates (the aggregate's inputs), read from the board, or
        None if this participant does not hold them all (a reveal it could not read)."""
        if model_round != self._round:
            return None
        candidates = self.consensus.elected_of(model_round)
        self._read_reveals(model_round)
        updates = {j: u for j, (u, _) in self._verified.items()}
        if self._own_sparse is not None:
            updates[self.index] = self._own_sparse
        valid = [c for c in candidates if c not in self._invalid]
        if any(c not in updates for c in valid):
            return None
        return [updates[c] for c in valid]
