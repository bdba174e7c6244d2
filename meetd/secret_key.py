"""The server's own secret: signs host tokens (and, later, upload forms and download links).

``MEETD_SECRET_KEY`` sets it; otherwise one is generated on first start and kept in the data
dir, readable only by its owner, so links stay valid across restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from meetd.data_dir import make_data_dir
from meetd.errors import ConfigurationError

FILE_NAME = "secret_key"
# A key of fewer characters is too easy to guess (an empty file once counted as a key). The
# generated ones have 64: 48 random bytes, URL-safe base64.
MIN_LENGTH = 32


def load_or_create_secret_key(data_dir: Path, configured: str | None = None) -> str:
    """The configured key, else the one kept in the data dir, made there on first start.

    A data dir that cannot hold it, or a kept key too short to trust, is a
    ConfigurationError naming the path."""
    if configured:
        return configured
    path = data_dir / FILE_NAME
    make_data_dir(data_dir)
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    return _create_key(path)


def _read_key(path: Path) -> str:
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        raise  # no key yet: the caller makes one
    except OSError as error:
        raise _unusable(path, "read", error) from None
    if len(key) < MIN_LENGTH:
        raise ConfigurationError(
            f"the secret key in {path} has {len(key)} characters, fewer than {MIN_LENGTH}; "
            "delete the file to have a new one made (host links signed with it stop working)"
        )
    return key


def _create_key(path: Path) -> str:
    """Write a new key beside ``path`` and link it into place, so the file exists only
    whole: when several processes start at once, one link wins and the others read its key
    (an O_EXCL create would let them read a file not yet written)."""
    key = secrets.token_urlsafe(48)
    try:
        fd, temporary = tempfile.mkstemp(prefix=".secret_key-", dir=path.parent)
    except OSError as error:
        raise _unusable(path, "create", error) from None
    try:
        with os.fdopen(fd, "w") as file:  # mkstemp makes it mode 600
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return _read_key(path)
    except OSError as error:
        raise _unusable(path, "create", error) from None
    finally:
        os.unlink(temporary)
    return key


def _unusable(path: Path, verb: str, error: OSError) -> ConfigurationError:
    return ConfigurationError(f"cannot {verb} the secret key {path}: {error.strerror or error}")


def key_id(secret_key: str) -> str:
    """A public name for the key, sent as ``kid``: it changes when the key does."""
    return hashlib.sha256(b"meetd-kid:" + secret_key.encode()).hexdigest()[:16]


def derive_key(secret_key: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so one secret never signs two kinds of thing."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()
