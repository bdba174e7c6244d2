"""Where files live: uploaded theme logos now, meeting recordings later.

One small interface, :class:`FileStore`, with two implementations: files under the data dir
(the default; meetd itself accepts the signed upload forms and serves the downloads) and an
S3-compatible bucket when ``MEETD_S3_BUCKET`` is set (uploads go straight to the bucket
through presigned POST forms). Keys are ``/``-separated paths such as
``auto-expiring-temp/logos/white/{uuid}``; everything under :data:`TEMPORARY_PREFIX` is deleted
once its upload form has expired and it was not finalized.

Every method blocks (disk or network); the API calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

TEMPORARY_PREFIX = "auto-expiring-temp/"
# Files under this prefix (finalized theme logos) are public: anyone may download them, and
# caches may keep them forever, because a key is never reused for other content.
PUBLIC_PREFIX = "logos/"
# How long an upload form stays valid; temporary files older than this have expired.
UPLOAD_FORM_SECONDS = 3600


def is_stale(modified: float, now: float) -> bool:
    """Whether a temporary file last written at ``modified`` has expired at ``now`` (Unix
    seconds): the sweep deletes it, and ``finalizeLogos`` no longer finds it, even before
    a sweep has run."""
    return modified < now - UPLOAD_FORM_SECONDS


@dataclasses.dataclass(frozen=True, slots=True)
class UploadForm:
    """A signed form: POST ``multipart/form-data`` with every field plus ``file`` to ``url``."""

    url: str
    fields: dict[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class StoredFile:
    """One version of a stored file, read in one go: a later write to its key changes none
    of this, so what a caller checks is what it keeps."""

    size: int
    modified: float  # Unix seconds: when it was written, by the clock the sweep compares with
    data: bytes | None  # None when the file is longer than the reader's limit


class FileStore(Protocol):
    def upload_form(
        self, key: str, *, content_type: str, max_bytes: int, extra_fields: dict[str, str]
    ) -> UploadForm:
        """A form that lets its holder upload one file of ``content_type``, at most
        ``max_bytes`` long, to ``key`` within :data:`UPLOAD_FORM_SECONDS`. ``extra_fields``
        (e.g. ``logoType``) are part of the form and bound by its signature."""
        ...

    def read(self, key: str) -> bytes | None:
        """The stored file's bytes, or None when there is none (or the key is not valid)."""
        ...

    def fetch(self, key: str, *, max_bytes: int) -> StoredFile | None:
        """The stored file with its bytes (unread when over ``max_bytes``), or None when
        there is none (or the key is not valid: client input, such as ``finalizeLogos``
        keys, may be checked with this)."""
        ...

    def write(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store ``data`` at ``key`` whole or not at all, replacing what was there.
        ``ValueError`` for a key :func:`meetd.files.keys.is_valid_key` refuses."""
        ...

    def delete(self, key: str) -> None:
        """Delete the file; a missing file is not an error."""
        ...

    def download_url(self, key: str, *, expires_in: int) -> str:
        """A link that downloads the file for ``expires_in`` seconds, then stops working."""
        ...

    def public_url(self, key: str) -> str:
        """``{public_url}/files/{key}``: where meetd serves a file under :data:`PUBLIC_PREFIX`
        to anyone, whichever store holds it."""
        ...

    def verify_link(self, key: str, *, expires: str | None, signature: str | None) -> bool:
        """Whether a ``/files/{key}?expires=…&signature=…`` link meetd signed is still good."""
        ...

    def delete_stale_temporary(self, now: float) -> int:
        """Delete temporary files older than the upload form's life; return how many.
        ``now`` is in Unix seconds."""
        ...
