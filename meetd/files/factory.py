"""Stub: being written."""

from __future__ import annotations

from typing import Any

from meetd.files import FileStore
from meetd.settings import Settings


def open_file_store(settings: Settings, signing_key: bytes) -> FileStore:
    store: Any = object()
    return store
