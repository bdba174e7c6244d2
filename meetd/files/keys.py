"""What a file key may look like.

Keys reach the stores from clients (``finalizeLogos`` bodies, ``/files/{key}`` paths), and
the local store turns them into paths under the data dir. So a key is accepted only in one
narrow shape: ``/``-separated segments of RFC 3986 unreserved characters (which also makes a
key safe in a URL unescaped), no empty segment, no segment that starts with a dot (so no
``.`` or ``..``, and the local store's ``.``-prefixed temporary files are never addressable),
and a bounded length. Anything else names no file.
"""

from __future__ import annotations

import re

MAX_KEY_LENGTH = 512
_SEGMENT = r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")


def is_valid_key(key: str) -> bool:
    return len(key) <= MAX_KEY_LENGTH and _KEY.fullmatch(key) is not None


def check_key(key: str) -> str:
    """The key itself; ``ValueError`` when meetd is about to write under a key it would refuse
    to read (a bug in the caller, not bad client input)."""
    if not is_valid_key(key):
        raise ValueError(f"not a valid file key: {key!r}")
    return key
