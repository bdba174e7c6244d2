"""Files under the data dir: ``{data_dir}/files/{key}``; meetd accepts the uploads and serves
the downloads itself (``meetd.api.files``).

A key becomes a path only after :func:`meetd.files.keys.is_valid_key` accepted it, so no key
reaches outside the root. Writes go to a dot-named temporary file next to the target and
are renamed over it, so a reader sees the old file or the new one, never half of one; the
file's mtime is set from meetd's clock, which is what :meth:`delete_stale_temporary`
compares against.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from meetd.clock import Clock
from meetd.files import (
    TEMPORARY_PREFIX,
    UPLOAD_FORM_SECONDS,
    StoredFile,
    UploadForm,
    forms,
    is_stale,
    links,
)
from meetd.files.keys import check_key, is_valid_key


class LocalFileStore(links.MeetdLinks):
    def __init__(self, root: Path, *, public_url: str, signing_key: bytes, clock: Clock) -> None:
        super().__init__(public_url=public_url, signing_key=signing_key, clock=clock)
        self.root = root

    def path(self, key: str) -> Path | None:
        """Where ``key`` lives on disk, or None for a key that names no file."""
        return self.root / key if is_valid_key(key) else None

    def upload_form(
        self, key: str, *, content_type: str, max_bytes: int, extra_fields: dict[str, str]
    ) -> UploadForm:
        policy = forms.UploadPolicy(
            key=check_key(key),
            content_type=content_type,
            max_bytes=max_bytes,
            expires=self._now() + UPLOAD_FORM_SECONDS,
            extra_fields=dict(extra_fields),
        )
        fields = forms.sign_form(policy, self._signing_key)
        return UploadForm(url=f"{self._public_url}/uploads", fields=fields)

    def verify_upload(self, fields: Mapping[str, str]) -> forms.UploadPolicy:
        """The policy of a posted form this store signed; ForbiddenError when it does not
        hold (tampered, expired, or fields the policy does not name)."""
        return forms.verify_form(fields, self._signing_key, self.clock.now_ms() / 1000)

    def read(self, key: str) -> bytes | None:
        found = self.fetch(key, max_bytes=sys.maxsize)
        return None if found is None else found.data

    def fetch(self, key: str, *, max_bytes: int) -> StoredFile | None:
        path = self.path(key)
        if path is None:
            return None
        try:
            file = path.open("rb")
        except OSError as error:
            if _names_no_file(error):
                return None
            raise
        # The size and mtime of the open file, not of the path: a write renames a new file
        # over the path (_replace) and leaves this one as it was.
        with file:
            found = os.fstat(file.fileno())
            data = file.read() if found.st_size <= max_bytes else None
        return StoredFile(size=found.st_size, modified=found.st_mtime, data=data)

    def write(self, key: str, data: bytes, *, content_type: str) -> None:
        # Local files keep no content type: downloads name it from the key (meetd.api.files).
        self._replace(key, lambda file: file.write(data))

    def delete(self, key: str) -> None:
        path = self.path(key)
        if path is not None:
            try:
                path.unlink()
            except OSError as error:
                if not _names_no_file(error):
                    raise

    def download_url(self, key: str, *, expires_in: int) -> str:
        expires = self._now() + expires_in
        signature = links.sign_link(check_key(key), expires, self._signing_key)
        return f"{self._public_url}/files/{key}?expires={expires}&signature={signature}"

    def delete_stale_temporary(self, now: float) -> int:
        deleted = 0
        # Also catches the dot-named leftovers of writes a crash interrupted there.
        for directory, _, names in os.walk(self.root / TEMPORARY_PREFIX):
            for name in names:
                path = Path(directory, name)
                with contextlib.suppress(FileNotFoundError):
                    if is_stale(path.lstat().st_mtime, now):
                        path.unlink()
                        deleted += 1
        return deleted

    def stat(self, key: str) -> os.stat_result | None:
        """The file's ``os.stat`` result (for serving it), or None when there is no file."""
        path = self.path(key)
        if path is None:
            return None
        try:
            found = path.stat()
        except OSError as error:
            if _names_no_file(error):
                return None
            raise
        return found if stat.S_ISREG(found.st_mode) else None

    def _replace(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        target = self.root / check_key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as file:
                fill(file)
                file.flush()
                os.fsync(file.fileno())
            now_ns = self.clock.now_ms() * 1_000_000
            os.utime(temporary, ns=(now_ns, now_ns))
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def _now(self) -> int:
        return self.clock.now_ms() // 1000


# What the OS answers for a name that leads to no regular file: missing, under a file, a
# directory, too long for the file system, a symlink loop. The caller sees no file, as for
# any key that names nothing; other errors (permissions, I/O) are the server's and propagate.
_NO_FILE_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP}
)


def _names_no_file(error: OSError) -> bool:
    return error.errno in _NO_FILE_ERRNOS
