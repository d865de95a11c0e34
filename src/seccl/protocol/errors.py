"""Typed errors for messages that are malformed, oversized, wrongly shaped or wrongly signed."""

from __future__ import annotations


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
