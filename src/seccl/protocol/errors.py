"""Typed errors for messages that are malformed, oversized, wrongly shaped or wrongly signed."""

from __future__ import annotations

import reprlib


class ProtocolError(Exception):
    """Root of every error the protocol layer raises for bad input."""


class MalformedMessageError(ProtocolError):
    """The bytes are not a well-formed SecCL message (bad magic, version, kind or length)."""


class OversizedMessageError(ProtocolError):
    """The message is larger than the receiver accepts."""


class NonFiniteValueError(ProtocolError):
    """The message carries NaN or infinite values."""


class ValueOutOfBoundsError(ProtocolError):
    """An update value exceeds the magnitude bound the session fixed."""


class WrongShapeError(ProtocolError):
    """The message's dimension or number of entries is not the session's."""


class WrongRoundError(ProtocolError):
    """The message belongs to another round than the one expected."""


class UnknownParticipantError(ProtocolError):
    """The message's author is not a registered participant of the session."""


class InvalidSignatureError(ProtocolError):
    """The signature is not the author's."""


class ReplayError(ProtocolError):
    """The message was already received (same author, round and kind)."""


class MalformedFieldError(MalformedMessageError, ValueError):
    """A field of a decoded statement or envelope is missing, of the wrong type or out of its range.

    Also a ValueError: callers that already turn a ValueError from a proof or a document into a
    refusal (the evidence verifier among them) refuse these as well, with no change of theirs.
    """


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = 72  # a Tx-ID (66 characters) or an address is quoted whole
_SHOWN.maxother = _SHOWN.maxlong = 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = 3
_SHOWN.maxlevel = 2


def shown(value: object) -> str:
    """``value`` as an error message quotes it: a short repr, whatever a peer made it (a value
    from the network can be a 100 MB string, and messages end up in logs and run records)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"  # repr itself fails beyond 4,300 digits
    try:
        return _SHOWN.repr(value)
    except ValueError:  # such an integer nested in a list
        return f"a {type(value).__name__}"
