"""A round's eligible updates, as every party reads them from the board: the same bytes, the same set."""

from __future__ import annotations

from seccl.chain.bulletin_board import BulletinBoardClient
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.errors import ProtocolError
from seccl.protocol.messages import UpdateMessage, decode_message
from seccl.protocol.session import SessionInfo


def eligible_updates(
    session: SessionInfo, board: BulletinBoardClient, round_: int
) -> dict[int, SparseUpdate]:
    """Round ``round_``'s eligible updates by author index: revealed on the board, not proven
    invalid, and decoding within the session's bounds as an update of that round by that author.
    Every party (the server, each participant, an auditor) reads them with this one function, so
    they agree on the set: a reveal that fails any of these checks is left out by all alike (and
    whoever likes may prove it invalid on chain)."""
    info = board.round_info(round_)
    found: dict[int, SparseUpdate] = {}
    for author, revealed in board.revealed_updates(round_).items():
        index = session.participants.index(author)
        if not info.has_revealed(index) or info.is_invalid(index):
            continue
        try:
            message = decode_message(revealed.message, **session.bounds())
        except ProtocolError:
            continue
        if isinstance(message, UpdateMessage) and (message.round, message.author) == (round_, author):
            found[index] = message.update
    return found
