"""What a request body may be before any handler reads it: plain functions over bytes.

Slack's Events adapter parses a body as JSON before it checks the signature, and Python's parser
raises ``RecursionError`` (a 500, a stack trace in the log) on deep nesting: the nesting is
measured here first, in one pass over the bytes whatever they hold, so that no body (120 KB of
escaped quotes, a megabyte of ``[``) can make the check itself slow.
"""
from __future__ import annotations

import re
from itertools import accumulate

# A JSON string: a quote, then any bytes where a backslash takes the next byte with it, up to the
# closing quote or the end of the body. The two classes never overlap and everything after the
# opening quote is optional, so a match never backtracks and an unterminated string ends the scan
# (the regex ``"(?:[^"\\]|\\.)*"`` failed at each quote and scanned on from the next: quadratic).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_nesting_depth(body: bytes) -> int:
    """How deeply ``body``'s JSON arrays and objects nest, brackets inside strings aside.

    Linear in ``len(body)`` (a regex that never backtracks, then C loops); it does not say whether
    ``body`` is JSON: the handler's parser does, once the depth is known to be safe for it."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))
