"""The themes endpoints (contract §5): themes, their rooms, and their logos.

Logos arrive in two steps, as they did at Vonage: ``GET /themes/logos-upload-urls`` hands out
three signed upload forms (one per logo type) whose files land in the store's temporary area;
``PUT /themes/{id}/finalizeLogos`` then reads each uploaded file once, checks those bytes and
writes the same bytes out of the temporary area (a form stays usable until it expires, so the
upload may be replaced meanwhile: what is kept is what was checked), and points the theme at
them. Nothing is finalized unless every key passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from meetd.api.context import Services, authenticate
from meetd.api.representations import theme_body
from meetd.api.requests import json_body, path_uuid
from meetd.api.responses import JSONResponse, no_content
from meetd.api.rooms import room_page
from meetd.domain.logos import EXCEEDS_SIZE, LOGO_TYPES, MAX_LOGO_BYTES, logo_problem
from meetd.domain.randomness import new_uuid
from meetd.domain.themes import (
    logo_type_of,
    parse_force,
    parse_logo_keys,
    parse_new_theme,
    parse_theme_update,
    permanent_logo_key,
    theme_not_found,
)
from meetd.errors import BadRequestError, ConflictError, InputValidationError, NotFoundError
from meetd.files import TEMPORARY_PREFIX, FileStore, is_stale
from meetd.store import themes
from meetd.store.database import Connection, is_unique_violation

log = logging.getLogger("meetd.themes")
T = TypeVar("T")


def _theme_id(request: Request) -> str:
    return path_uuid(request, "theme_id", theme_not_found)


def _body(services: Services, theme: themes.ThemeRecord, account_id: str) -> dict[str, Any]:
    return theme_body(theme, account_id, services.files.public_url)


async def _write(services: Services, fn: Callable[[Connection], Coroutine[Any, Any, T]]) -> T:
    """Run a theme change. The store checks names and short URLs before writing; a short URL
    taken by another server process between that check and the commit breaks the UNIQUE
    index instead, and is the same 409."""
    try:
        return await services.db.write(fn)
    except Exception as error:
        if is_unique_violation(error):
            raise ConflictError(themes.SHORT_URL_TAKEN) from None
        raise


async def list_themes(request: Request) -> Response:
    services, principal = await authenticate(request)
    found = await services.db.read(lambda c: themes.list_themes(c, principal.application_id))
    return JSONResponse([_body(services, theme, principal.account_id) for theme in found])


async def create_theme(request: Request) -> Response:
    services, principal = await authenticate(request)
    change = parse_new_theme(await json_body(request))
    theme_id = new_uuid()
    limit = services.settings.themes_per_application
    now = services.clock.now_ms()
    theme = await _write(
        services,
        lambda c: themes.insert_theme(
            c,
            theme_id=theme_id,
            application_id=principal.application_id,
            change=change,
            limit=limit,
            now_ms=now,
        ),
    )
    return JSONResponse(_body(services, theme, principal.account_id), status_code=201)


async def get_theme(request: Request) -> Response:
    services, principal = await authenticate(request)
    theme_id = _theme_id(request)
    theme = await services.db.read(
        lambda c: themes.get_theme(c, principal.application_id, theme_id)
    )
    return JSONResponse(_body(services, theme, principal.account_id))


async def update_theme(request: Request) -> Response:
    services, principal = await authenticate(request)
    theme_id = _theme_id(request)
    change = parse_theme_update(await json_body(request))
    theme = await _write(
        services, lambda c: themes.update_theme(c, principal.application_id, theme_id, change)
    )
    return JSONResponse(_body(services, theme, principal.account_id))


async def delete_theme(request: Request) -> Response:
    services, principal = await authenticate(request)
    theme_id = _theme_id(request)
    force = parse_force(request.query_params.get("force"))
    theme = await services.db.write(
        lambda c: themes.delete_theme(c, principal.application_id, theme_id, force=force)
    )
    await _delete_files(services.files, theme.logo_keys)
    return no_content()


def _rooms_not_found(theme_id: str) -> NotFoundError:
    return NotFoundError(f"Failed to get rooms because theme id {theme_id} not found")


async def list_theme_rooms(request: Request) -> Response:
    services, principal = await authenticate(request)
    theme_id = path_uuid(request, "theme_id", _rooms_not_found)
    application_id = principal.application_id
    if not await services.db.read(lambda c: themes.theme_exists(c, application_id, theme_id)):
        raise _rooms_not_found(request.path_params["theme_id"])  # as the caller wrote it
    return await room_page(
        request, services, application_id, f"/themes/{theme_id}/rooms", theme_id=theme_id
    )


async def logo_upload_forms(request: Request) -> Response:
    services, _ = await authenticate(request)
    forms = await asyncio.to_thread(_upload_forms, services.files)
    return JSONResponse(forms)


def _upload_forms(files: FileStore) -> list[dict[str, Any]]:
    forms = []
    for logo_type in LOGO_TYPES:
        form = files.upload_form(
            f"{TEMPORARY_PREFIX}logos/{logo_type}/{new_uuid()}",
            content_type="image/png",
            max_bytes=MAX_LOGO_BYTES,
            extra_fields={"logoType": logo_type},
        )
        forms.append({"url": form.url, "fields": form.fields})
    return forms


async def finalize_logos(request: Request) -> Response:
    services, principal = await authenticate(request)
    theme_id = _theme_id(request)
    keys = parse_logo_keys(await json_body(request))
    application_id = principal.application_id
    await services.db.read(lambda c: themes.get_theme(c, application_id, theme_id))

    types = [logo_type_of(key) for key in keys]
    named = [logo_type for logo_type in types if logo_type is not None]
    if len(set(named)) != len(named):
        raise InputValidationError('"keys" must hold at most one logo of each type')

    now = services.clock.now_ms() / 1000
    logos, errors = await asyncio.to_thread(_check_logos, services.files, keys, now)
    if errors:
        raise BadRequestError("could not finalize logos", errors=errors)
    by_type = {str(logo_type): key for logo_type, key in zip(types, keys, strict=True)}
    permanent = {logo_type: permanent_logo_key(key) for logo_type, key in by_type.items()}
    # Write first, commit second: the other order could leave a theme pointing at a file that
    # never arrived. If either step fails, the files written are deleted, as nothing links
    # to them; a request cancelled during the commit keeps them (below).
    try:
        await asyncio.to_thread(_write_all, services.files, logos, permanent)
    except BaseException:
        await _delete_files(services.files, list(permanent.values()))
        raise
    try:
        theme, replaced = await services.db.write(
            lambda c: themes.set_logos(c, application_id, theme_id, permanent)
        )
    except asyncio.CancelledError:
        # The request was cancelled (the server is stopping), not the write: it may still
        # commit, so its files stay. At worst they are files nothing uses.
        raise
    except BaseException:
        await _delete_files(services.files, list(permanent.values()))
        raise
    await _delete_files(services.files, [*by_type.values(), *replaced])
    return JSONResponse(_body(services, theme, principal.account_id))


def _check_logos(
    files: FileStore, keys: list[str], now: float
) -> tuple[dict[str, bytes], list[dict[str, str]]]:
    """Each good logo's bytes by logo type, and the contract's error for each key that
    cannot be finalized (empty: all good). Each upload is read once, and those bytes are
    both the ones checked and the ones kept."""
    logos = {}
    errors = []
    for key in keys:
        logo_type = logo_type_of(key)
        found = None if logo_type is None else files.fetch(key, max_bytes=MAX_LOGO_BYTES)
        # An expired upload is gone, whether or not the sweep has deleted it yet.
        if logo_type is None or found is None or is_stale(found.modified, now):
            errors.append({"logoKey": key, "code": "key_not_found"})
            continue
        if found.data is None:  # too long to be read
            problem: str | None = EXCEEDS_SIZE
        else:
            problem = logo_problem(found.data, logo_type)
            logos[logo_type] = found.data  # kept only if no key has an error
        if problem is not None:
            errors.append(
                {"logoKey": key, "code": "invalid_logo_properties", "invalidProperty": problem}
            )
    return logos, errors


def _write_all(files: FileStore, logos: dict[str, bytes], targets: dict[str, str]) -> None:
    for logo_type, data in logos.items():
        files.write(targets[logo_type], data, content_type="image/png")


async def _delete_files(files: FileStore, keys: list[str]) -> None:
    """Delete files nothing refers to any more. A failure leaves an orphan file, logged, and
    never fails the request whose change is already committed."""

    def delete_all() -> None:
        for key in keys:
            try:
                files.delete(key)
            except Exception:
                log.warning("could not delete a file", extra={"key": key}, exc_info=True)

    if keys:
        await asyncio.to_thread(delete_all)
