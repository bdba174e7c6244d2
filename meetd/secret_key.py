"""The server's own secret: signs host tokens (and, later, upload forms and download links).

``MEETD_SECRET_KEY`` sets it; otherwise one is generated on first start and kept in the data
dir, readable only by its owner, so links stay valid across restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from meetd.data_dir import make_data_dir
from meetd.errors import ConfigurationError

FILE_NAME = "secret_key"


def load_or_create_secret_key(data_dir: Path, configured: str | None = None) -> str:
    """The configured key, else the one kept in the data dir, made there on first start.

    A data dir that cannot hold it is a ConfigurationError naming the path."""
    if configured:
        return configured
    path = data_dir / FILE_NAME
    make_data_dir(data_dir)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise _unusable(path, "read", error) from None
    key = secrets.token_urlsafe(48)
    # O_EXCL: if several processes start at once, one writes and the others read its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    except OSError as error:
        raise _unusable(path, "create", error) from None
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


def _unusable(path: Path, verb: str, error: OSError) -> ConfigurationError:
    return ConfigurationError(f"cannot {verb} the secret key {path}: {error.strerror or error}")


def key_id(secret_key: str) -> str:
    """A public name for the key, sent as ``kid``: it changes when the key does."""
    return hashlib.sha256(b"meetd-kid:" + secret_key.encode()).hexdigest()[:16]


def derive_key(secret_key: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so one secret never signs two kinds of thing."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()
