"""Every route meetd serves. The API lives under both prefixes with one behaviour (§1)."""

from __future__ import annotations

from meetd.api import (
    applications,
    dial_in_numbers,
    events,
    files,
    recordings,
    rooms,
    service,
    themes,
)
from meetd.api.asgi import Resource

API_PREFIXES = ("/v1/meetings", "/beta/meetings")


def api_resources(prefix: str) -> list[Resource]:
    return [
        Resource(f"{prefix}/rooms", get=rooms.list_rooms, post=rooms.create_room),
        Resource(
            f"{prefix}/rooms/{{room_id}}",
            get=rooms.get_room,
            patch=rooms.update_room,
            delete=rooms.delete_room,
        ),
        Resource(f"{prefix}/themes", get=themes.list_themes, post=themes.create_theme),
        Resource(f"{prefix}/themes/logos-upload-urls", get=themes.logo_upload_forms),
        Resource(
            f"{prefix}/themes/{{theme_id}}",
            get=themes.get_theme,
            patch=themes.update_theme,
            delete=themes.delete_theme,
        ),
        Resource(f"{prefix}/themes/{{theme_id}}/rooms", get=themes.list_theme_rooms),
        Resource(f"{prefix}/themes/{{theme_id}}/finalizeLogos", put=themes.finalize_logos),
        Resource(f"{prefix}/applications", patch=applications.update_application),
        Resource(f"{prefix}/dial-in-numbers", get=dial_in_numbers.list_dial_in_numbers),
        Resource(
            f"{prefix}/recordings/{{recording_id}}",
            get=recordings.get_recording,
            delete=recordings.delete_recording,
        ),
        Resource(
            f"{prefix}/sessions/{{session_id}}/recordings", get=recordings.list_session_recordings
        ),
        # The Node SDK's getSessionRecordings asks for the session itself (§10): same body.
        Resource(f"{prefix}/sessions/{{session_id}}", get=recordings.list_session_recordings),
        # The delivery log of callbacks (beyond Vonage).
        Resource(f"{prefix}/events", get=events.list_events),
        Resource(f"{prefix}/events/redeliver", post=events.redeliver_room_events),
        Resource(f"{prefix}/events/{{event_id}}", get=events.get_event),
        Resource(f"{prefix}/events/{{event_id}}/redeliver", post=events.redeliver_event),
    ]


def all_resources() -> list[Resource]:
    resources = [
        Resource("/healthz", get=service.healthz),
        Resource("/metrics", get=service.metrics),
        Resource("/openapi.json", get=service.openapi),
        # The local file store's side of the upload forms and download links (meetd.files).
        Resource(files.UPLOAD_PATH, post=files.upload),
        Resource(f"{files.DOWNLOAD_PREFIX}/{{key:path}}", get=files.download),
    ]
    for prefix in API_PREFIXES:
        resources += api_resources(prefix)
    return resources
