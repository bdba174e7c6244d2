"""What a file key may look like.

Keys reach the stores from clients (``finalizeLogos`` bodies, ``/files/{key}`` paths), and
the local store turns them into paths under the data dir. So a key is accepted only in one
narrow shape: ``/``-separated segments of RFC 3986 unreserved characters (which also makes a
key safe in a URL unescaped), no empty segment, no segment that starts with a dot (so no
``.`` or ``..``, and the local store's ``.``-prefixed temporary files are never addressable),
and a bounded length, each segment too (see :data:`MAX_SEGMENT_LENGTH`). Anything else
names no file.
"""

from __future__ import annotations

import re

MAX_KEY_LENGTH = 512
# Each segment becomes a file name in the local store: well under the NAME_MAX of common
# file systems (255 bytes), with room for the temporary name a write wraps around it.
MAX_SEGMENT_LENGTH = 200
_SEGMENT = rf"[A-Za-z0-9_~-][A-Za-z0-9._~-]{{0,{MAX_SEGMENT_LENGTH - 1}}}"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")


def is_valid_key(key: str) -> bool:
    return len(key) <= MAX_KEY_LENGTH and _KEY.fullmatch(key) is not None


def check_key(key: str) -> str:
    """The key itself; ``ValueError`` when meetd is about to write under a key it would refuse
    to read (a bug in the caller, not bad client input)."""
    if not is_valid_key(key):
        raise ValueError(f"not a valid file key: {key!r}")
    return key
