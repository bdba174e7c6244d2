"""Download links meetd signs itself: ``/files/{key}?expires=…&signature=…``.

The signature is the base64url HMAC-SHA256 of the key and the expiry (Unix seconds) under
meetd's ``files`` key, so a link opens one file until one moment and cannot be edited into
a link to another file or a later moment. Pure: the caller passes the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from meetd.clock import Clock
from meetd.files.keys import check_key

_PURPOSE = b"meetd-download-link\n"  # one key signs forms and links: never the same message
_MAX_EXPIRES_DIGITS = 12  # Unix seconds for the next thirty thousand years


def sign_link(key: str, expires: int, signing_key: bytes) -> str:
    message = _PURPOSE + f"{key}\n{expires}".encode()
    digest = hmac.new(signing_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify_link(
    key: str, expires: str | None, signature: str | None, signing_key: bytes, now: float
) -> bool:
    """Whether ``expires`` and ``signature`` (from the query) open ``key`` at ``now``."""
    if expires is None or signature is None:
        return False
    if not (expires.isascii() and expires.isdigit() and len(expires) <= _MAX_EXPIRES_DIGITS):
        return False
    expected = sign_link(key, int(expires), signing_key).encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return False
    return now < int(expires)


class MeetdLinks:
    """The links to files that point at meetd itself, whichever store holds the files: a
    logo's public link, and the check of a download link meetd signed. Both stores inherit
    it."""

    def __init__(self, *, public_url: str, signing_key: bytes, clock: Clock) -> None:
        self.clock = clock
        self._public_url = public_url
        self._signing_key = signing_key

    def public_url(self, key: str) -> str:
        return f"{self._public_url}/files/{check_key(key)}"

    def verify_link(self, key: str, *, expires: str | None, signature: str | None) -> bool:
        now = self.clock.now_ms() / 1000
        return verify_link(key, expires, signature, self._signing_key, now)
