"""JSON from another party, parsed within bounds: what would make Python's parser fail untyped
(or, nested deep enough, overflow the C stack and kill the process) is refused with a ValueError."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_RECORD_DEPTH = 16
"""The deepest nesting accepted in a run's or a participant's records (an evidence file nests 6
levels: the file, its findings, a finding, its proof, a statement, its digests)."""

MAX_INT_DIGITS = 80
"""The longest integer accepted in a JSON document (a uint256 has 78 digits; a round 20)."""


def parse_json(data: bytes, *, max_depth: int) -> Any:
    """The JSON value in ``data`` (UTF-8), or a ValueError saying why not.

    What would make the parser itself fail untyped is refused first or on the way: nesting
    deeper than ``max_depth`` (checked before parsing: the parser recurses per level), integers
    longer than :data:`MAX_INT_DIGITS` digits (Python refuses to convert those beyond 4,300
    digits, and nothing here needs them), and NaN or Infinity, which are not JSON.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    depth = _nesting(data, max_depth)
    if depth is None:
        raise ValueError(f"nested deeper than {max_depth} levels, or its brackets do not match")
    try:
        return json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:  # pragma: no cover - _nesting refused anything this deep
        raise ValueError("nested too deeply") from None


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits; at most {MAX_INT_DIGITS} accepted")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_STRUCTURE = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_CURLY_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_STRING = re.compile(rb'"[^"]*"')


def _nesting(data: bytes, limit: int) -> int | None:
    """How deep ``data``'s arrays and objects nest, if at most ``limit``; None if deeper or if
    its brackets or quotes do not pair up (not JSON then anyway).

    Linear, C-speed passes only, since a request may be hundreds of MB: escaped backslashes and
    quotes are dropped, then everything but brackets and quotes (an honest request's hex is
    gone here), then every string; what is left is brackets alone, and each pass of removing
    adjacent ``[]`` pairs strips exactly the innermost level.
    """
    if b"\\" in data:
        # Pairs first, left to right, as a JSON scanner reads a run of backslashes; then a
        # backslash before a quote always escapes it.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = _STRING.sub(b"", data.translate(None, delete=_STRUCTURE))
    if b'"' in skeleton:
        return None  # a string that never ends
    brackets = skeleton.translate(_CURLY_AS_SQUARE)
    for depth in range(limit + 1):
        if not brackets:
            return depth
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):
            return None  # brackets that do not pair up
        brackets = inner
    return None
