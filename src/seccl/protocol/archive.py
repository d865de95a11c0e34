"""A run's durable record: every signed message and model by digest, in one SQLite file.

SQLite (the standard library's) rather than loose files: one transaction per write makes each
record atomic (a crash leaves it whole or absent, never half-written), the digest is the primary
key so a message is stored once however often it is offered, and an auditor opens the file with
any SQLite client. Models are also written as PyTorch ``state_dict`` files (see
:func:`seccl.learning.model.save_state_dict`) so that users load them in one line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seccl.chain.bulletin_board import MessageKind
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.messages import header_author

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    digest     BLOB PRIMARY KEY,   -- SHA-256 of data: what the board records
    round      INTEGER NOT NULL,
    kind       INTEGER NOT NULL,   -- 0 update, 1 evaluation, 2 model
    author     TEXT NOT NULL,
    data       BLOB NOT NULL,      -- the bytes exactly as signed
    signature  BLOB NOT NULL,      -- the author's signature (empty for a model only recomputed)
    tx_id      TEXT                -- the transaction that recorded it, if known
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_round ON messages (round, kind, author);
"""


@dataclass(frozen=True)
class ArchivedMessage:
    """One stored message: the signed bytes and where the chain recorded them."""

    round: int
    kind: MessageKind
    author: str
    signed: SignedMessage
    tx_id: str | None


class RunArchive:
    """The messages of one run, keyed by digest; safe to reopen after a crash."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        # WAL + FULL: a committed record survives a power cut, and readers never block the writer.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunArchive:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def put(self, round_: int, kind: MessageKind, signed: SignedMessage, tx_id: str | None = None) -> bool:
        """Store ``signed`` once (atomically); a later call may only add its Tx-ID. Returns
        whether anything changed."""
        author = header_author(signed.data) or ""
        digest = signed.digest()
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO messages (digest, round, kind, author, data, signature, tx_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO UPDATE SET "
                "tx_id = COALESCE(messages.tx_id, excluded.tx_id), "
                "signature = CASE WHEN messages.signature = x'' THEN excluded.signature "
                "ELSE messages.signature END "
                "WHERE (messages.tx_id IS NULL AND excluded.tx_id IS NOT NULL) "
                "OR (messages.signature = x'' AND excluded.signature != x'')",
                (digest, round_, int(kind), author, signed.data, signed.signature, tx_id),
            )
        return cursor.rowcount > 0

    def correct_tx(self, digest: bytes, tx_id: str) -> bool:
        """Set the Tx-ID of a stored message to the one the chain now records it in. Only after a
        crash can they differ: a chain saved before the crash lost the transaction the store had
        noted, and the resumed run posted the same message again. Returns whether it changed."""
        with self._db:
            cursor = self._db.execute(
                "UPDATE messages SET tx_id = ? WHERE digest = ? AND tx_id IS NOT ?", (tx_id, digest, tx_id)
            )
        return cursor.rowcount > 0

    # A participant's journal (see ``seccl.roles.participant_state.Journal``): what it signed is stored
    # before the message leaves it, and recalled after a crash instead of signing another.

    def record(self, round_: int, kind: MessageKind, signed: SignedMessage) -> None:
        self.put(round_, kind, signed)

    def recall(self, round_: int, kind: MessageKind, author: str) -> list[SignedMessage]:
        rows = self._db.execute(
            "SELECT data, signature FROM messages WHERE round = ? AND kind = ? AND author = ? COLLATE NOCASE",
            (round_, int(kind), author),
        )
        return [SignedMessage(bytes(data), bytes(signature)) for data, signature in rows]

    def get(self, digest: bytes) -> ArchivedMessage | None:
        row = self._db.execute(
            "SELECT round, kind, author, data, signature, tx_id FROM messages WHERE digest = ?", (digest,)
        ).fetchone()
        return None if row is None else _archived(row)

    def of_round(self, round_: int, kind: MessageKind | None = None) -> list[ArchivedMessage]:
        """The messages of ``round_`` (of one ``kind`` if given), by kind and author."""
        query = "SELECT round, kind, author, data, signature, tx_id FROM messages WHERE round = ?"
        args: tuple[int, ...] = (round_,)
        if kind is not None:
            query += " AND kind = ?"
            args += (int(kind),)
        return [_archived(row) for row in self._db.execute(query + " ORDER BY kind, author", args)]

    def __iter__(self) -> Iterator[ArchivedMessage]:
        rows = self._db.execute(
            "SELECT round, kind, author, data, signature, tx_id FROM messages ORDER BY round, kind, author"
        )
        return (_archived(row) for row in rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def _archived(row: tuple) -> ArchivedMessage:
    round_, kind, author, data, signature, tx_id = row
    return ArchivedMessage(
        int(round_), MessageKind(kind), str(author), SignedMessage(bytes(data), bytes(signature)), tx_id
    )
