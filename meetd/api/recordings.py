"""The recordings endpoints (contract §7): read one, delete an uploaded one, list a session's.

A recording's ``_links.url.href`` is a signed download link that stops working after an hour;
it exists only once the recording is uploaded with a stored file. Before that ``_links`` is
``{}`` — the Node SDK reads ``_links?.url?.href`` and then has no URL, which is the truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from meetd.api.context import authenticate
from meetd.api.responses import JSONResponse, no_content
from meetd.domain.timestamps import format_timestamp
from meetd.domain.validation import canonical_uuid
from meetd.files import FileStore
from meetd.store import recordings
from meetd.store.recordings import RecordingRecord

log = logging.getLogger("meetd.api")

# How long a download link works (Vonage's links expired too; an hour covers a slow download).
DOWNLOAD_LINK_SECONDS = 3600


def recording_body(recording: RecordingRecord, download_url: str | None) -> dict[str, Any]:
    """A recording as the API shows it, fields in Vonage's order."""
    ended_at = recording.ended_at
    return {
        "id": recording.id,
        "session_id": recording.session_id,
        "started_at": format_timestamp(recording.started_at),
        "ended_at": None if ended_at is None else format_timestamp(ended_at),
        "status": recording.status,
        "_links": {} if download_url is None else {"url": {"href": download_url}},
    }


def _download_urls(files: FileStore, found: Sequence[RecordingRecord]) -> list[str | None]:
    keys = [r.download_key for r in found]
    return [
        None if key is None else files.download_url(key, expires_in=DOWNLOAD_LINK_SECONDS)
        for key in keys
    ]


async def _bodies(files: FileStore, found: Sequence[RecordingRecord]) -> list[dict[str, Any]]:
    # Signing may touch the disk or the network: one thread hop for the lot, none without files.
    if any(r.download_key is not None for r in found):
        urls = await asyncio.to_thread(_download_urls, files, found)
    else:
        urls = [None] * len(found)
    return [recording_body(r, url) for r, url in zip(found, urls, strict=True)]


def _recording_id(request: Request, *, deleting: bool = False) -> str:
    """The path's recording id; anything that is not a UUID names no recording."""
    text: str = request.path_params["recording_id"]
    recording_id = canonical_uuid(text)
    if recording_id is None:
        if deleting:
            raise recordings.recording_to_delete_not_found()
        raise recordings.recording_not_found(text)
    return recording_id


async def get_recording(request: Request) -> Response:
    services, principal = await authenticate(request)
    recording_id = _recording_id(request)
    found = await services.db.read(
        lambda c: recordings.get_recording(c, principal.application_id, recording_id)
    )
    (body,) = await _bodies(services.files, [found])
    return JSONResponse(body)


async def delete_recording(request: Request) -> Response:
    services, principal = await authenticate(request)
    recording_id = _recording_id(request, deleting=True)
    key = await services.db.write(
        lambda c: recordings.delete_recording(c, principal.application_id, recording_id)
    )
    if key is not None:
        # The row is gone and committed: the recording no longer exists for the API. A file
        # that fails to go is only litter in the store, not the client's failure.
        try:
            await asyncio.to_thread(services.files.delete, key)
        except Exception:
            log.warning(
                "could not delete a recording's file",
                exc_info=True,
                extra={"recording_id": recording_id, "storage_key": key},
            )
    return no_content()


async def list_session_recordings(request: Request) -> Response:
    """``GET /sessions/{id}/recordings``, and ``GET /sessions/{id}`` for the Node SDK (§10)."""
    services, principal = await authenticate(request)
    session_id: str = request.path_params["session_id"]
    if not recordings.is_session_id(session_id):
        raise recordings.session_not_found(session_id)
    found = await services.db.read(
        lambda c: recordings.list_session_recordings(c, principal.application_id, session_id)
    )
    return JSONResponse({"_embedded": {"recordings": await _bodies(services.files, found)}})
