"""The server's message store: every accepted message by round, kind and author, with its Tx-ID."""

from __future__ import annotations

from dataclasses import dataclass

from seccl.chain.bulletin_board import MessageKind
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.errors import ReplayError
from seccl.protocol.messages import Message


@dataclass(frozen=True)
class StoredMessage:
    """A message the server accepted and posted: the checked message itself (opened once, so
    nothing downstream decodes or verifies it again), its signed bytes, and its record's Tx-ID."""

    message: Message
    signed: SignedMessage
    tx_id: str

    @property
    def round(self) -> int:
        return self.message.round

    @property
    def kind(self) -> MessageKind:
        return self.message.kind

    @property
    def author(self) -> str:
        return self.message.author


class MessageStore:
    """Append-only: a second message of the same round, kind and author is a replay."""

    def __init__(self) -> None:
        self._messages: dict[tuple[int, MessageKind, str], StoredMessage] = {}

    def check_new(self, round_: int, kind: MessageKind, author: str) -> None:
        """Raise :class:`ReplayError` if this round already has ``author``'s ``kind`` message."""
        if (round_, kind, author) in self._messages:
            raise ReplayError(f"{author} already sent its {kind.name.lower()} message of round {round_}")

    def add(self, stored: StoredMessage) -> None:
        self.check_new(stored.round, stored.kind, stored.author)
        self._messages[(stored.round, stored.kind, stored.author)] = stored

    def get(self, round_: int, kind: MessageKind, author: str) -> StoredMessage | None:
        return self._messages.get((round_, kind, author))

    def of_round(self, round_: int, kind: MessageKind) -> list[StoredMessage]:
        return [m for (r, k, _), m in self._messages.items() if r == round_ and k == kind]

    def __len__(self) -> int:
        return len(self._messages)
