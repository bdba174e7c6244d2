"""Theme rows and the application's default theme.

Every function takes a :class:`~meetd.store.database.Connection` already inside the right
transaction. Changes to an application's themes first lock the application's row, so that
the theme limit and the name rule hold even with several server processes on one PostgreSQL
database (SQLite has one writer anyway).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from meetd.domain.themes import LOGO_COLUMNS, ThemeChange, theme_not_found
from meetd.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError
from meetd.store.database import Connection, Reader

NAME_TAKEN = "theme_name already exists in application"
SHORT_URL_TAKEN = "short_company_url already exists"

_COLUMNS = (
    "id, application_id, theme_name, main_color, brand_text, short_company_url,"
    " brand_image_colored, brand_image_white, branded_favicon"
)


@dataclasses.dataclass(slots=True)
class ThemeRecord:
    id: str
    application_id: str
    theme_name: str
    main_color: str
    brand_text: str
    short_company_url: str | None
    brand_image_colored: str | None
    brand_image_white: str | None
    branded_favicon: str | None

    @property
    def logo_keys(self) -> list[str]:
        keys = (self.brand_image_colored, self.brand_image_white, self.branded_favicon)
        return [key for key in keys if key is not None]


@dataclasses.dataclass(frozen=True, slots=True)
class ThemeUse:
    """What still refers to a theme: live rooms, and whether it is the default."""

    rooms: int
    is_default: bool


def _lock_application(conn: Connection, application_id: str) -> str | None:
    """Hold the application's row to the end of the transaction; its default theme id."""
    lock = " FOR UPDATE" if conn.dialect == "postgresql" else ""
    row = conn.fetchone(
        f"SELECT default_theme_id FROM applications WHERE id = ?{lock}", (application_id,)
    )
    if row is None:
        raise NotFoundError(f"application {application_id} not found")
    value: str | None = row[0]
    return value


def _check_unique(
    conn: Connection, application_id: str, values: dict[str, Any], theme_id: str | None
) -> None:
    other = "" if theme_id is None else " AND id <> ?"
    extra: tuple[Any, ...] = () if theme_id is None else (theme_id,)
    if "theme_name" in values:
        taken = conn.fetchone(
            f"SELECT 1 FROM themes WHERE application_id = ? AND theme_name = ?{other}",
            (application_id, values["theme_name"], *extra),
        )
        if taken is not None:
            raise ConflictError(NAME_TAKEN)
    if values.get("short_company_url") is not None:
        taken = conn.fetchone(
            f"SELECT 1 FROM themes WHERE short_company_url = ?{other}",
            (values["short_company_url"], *extra),
        )
        if taken is not None:
            raise ConflictError(SHORT_URL_TAKEN)


async def insert_theme(
    conn: Connection,
    *,
    theme_id: str,
    application_id: str,
    change: ThemeChange,
    limit: int,
    now_ms: int,
) -> ThemeRecord:
    """A new theme; 403 past the application's limit, 409 on a taken name or short URL."""
    _lock_application(conn, application_id)
    (count,) = conn.fetchone(
        "SELECT COUNT(*) FROM themes WHERE application_id = ?", (application_id,)
    )
    if count >= limit:
        raise ForbiddenError(
            f"could not create theme: the application already has the maximum of {limit} themes"
        )
    values = {"theme_name": theme_id, "short_company_url": None, **change.values}
    _check_unique(conn, application_id, values, None)
    conn.execute(
        "INSERT INTO themes (id, application_id, theme_name, main_color, brand_text,"
        " short_company_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            theme_id,
            application_id,
            values["theme_name"],
            values["main_color"],
            values["brand_text"],
            values["short_company_url"],
            now_ms,
        ),
    )
    return ThemeRecord(
        theme_id,
        application_id,
        str(values["theme_name"]),
        str(values["main_color"]),
        str(values["brand_text"]),
        values["short_company_url"],
        None,
        None,
        None,
    )


async def get_theme(conn: Reader, application_id: str, theme_id: str) -> ThemeRecord:
    row = await conn.row(
        f"SELECT {_COLUMNS} FROM themes WHERE id = ? AND application_id = ?",
        (theme_id, application_id),
    )
    if row is None:
        raise theme_not_found(theme_id)
    return ThemeRecord(*row)


async def theme_exists(conn: Reader, application_id: str, theme_id: str) -> bool:
    row = await conn.row(
        "SELECT 1 FROM themes WHERE id = ? AND application_id = ?", (theme_id, application_id)
    )
    return row is not None


async def list_themes(conn: Reader, application_id: str) -> list[ThemeRecord]:
    """The application's themes, oldest first."""
    rows = await conn.rows(
        f"SELECT {_COLUMNS} FROM themes WHERE application_id = ? ORDER BY created_at, id",
        (application_id,),
    )
    return [ThemeRecord(*row) for row in rows]


async def update_theme(
    conn: Connection, application_id: str, theme_id: str, change: ThemeChange
) -> ThemeRecord:
    _lock_application(conn, application_id)
    theme = await get_theme(conn, application_id, theme_id)
    _check_unique(conn, application_id, change.values, theme_id)
    assignments = ", ".join(f"{column} = ?" for column in change.values)
    conn.execute(
        f"UPDATE themes SET {assignments} WHERE id = ?", (*change.values.values(), theme_id)
    )
    for column, value in change.values.items():
        setattr(theme, column, value)
    return theme


def theme_use(conn: Connection, application_id: str, theme_id: str) -> ThemeUse:
    (rooms,) = conn.fetchone(
        "SELECT COUNT(*) FROM rooms WHERE theme_id = ? AND deleted_at IS NULL", (theme_id,)
    )
    default = conn.fetchone(
        "SELECT 1 FROM applications WHERE id = ? AND default_theme_id = ?",
        (application_id, theme_id),
    )
    return ThemeUse(int(rooms), default is not None)


async def delete_theme(
    conn: Connection, application_id: str, theme_id: str, *, force: bool
) -> ThemeRecord:
    """Delete a theme. Unless ``force``, one still used by rooms or as the application's
    default is refused (400, with the uses listed); with it, they let go of the theme."""
    _lock_application(conn, application_id)
    theme = await get_theme(conn, application_id, theme_id)
    use = theme_use(conn, application_id, theme_id)
    if not force and (use.rooms or use.is_default):
        errors = []
        if use.rooms:
            errors.append(f"Theme {theme_id} is used by {use.rooms} room")
        if use.is_default:
            errors.append(f"Theme {theme_id} is the default theme of application {application_id}")
        raise BadRequestError("could not delete theme", errors=errors)
    # Deleted rooms keep no theme either: the row may go only once nothing refers to it.
    conn.execute("UPDATE rooms SET theme_id = NULL WHERE theme_id = ?", (theme_id,))
    conn.execute(
        "UPDATE applications SET default_theme_id = NULL WHERE id = ? AND default_theme_id = ?",
        (application_id, theme_id),
    )
    conn.execute("DELETE FROM themes WHERE id = ?", (theme_id,))
    return theme


async def set_logos(
    conn: Connection, application_id: str, theme_id: str, keys: dict[str, str]
) -> tuple[ThemeRecord, list[str]]:
    """Point the theme's logo columns at finalized keys (by logo type); return the theme and
    the keys it no longer uses."""
    # As every theme change: another process finalizing logos for this theme at the same
    # moment would otherwise read the same old keys, and the key it set would be left behind.
    _lock_application(conn, application_id)
    theme = await get_theme(conn, application_id, theme_id)
    replaced = []
    for logo_type, key in keys.items():
        column = LOGO_COLUMNS[logo_type]
        old = getattr(theme, column)
        if old is not None:
            replaced.append(old)
        setattr(theme, column, key)
        conn.execute(f"UPDATE themes SET {column} = ? WHERE id = ?", (key, theme_id))
    return theme, replaced


async def set_default_theme(
    conn: Connection, application_id: str, theme_id: str | None
) -> str | None:
    """Make ``theme_id`` (None: no theme) the application's default; return its account id,
    or None, writing nothing, when the application has no such theme."""
    _lock_application(conn, application_id)
    if theme_id is not None and not await theme_exists(conn, application_id, theme_id):
        return None
    row = conn.fetchone(
        "UPDATE applications SET default_theme_id = ? WHERE id = ? RETURNING account_id",
        (theme_id, application_id),
    )
    account_id: str = row[0]
    return account_id
