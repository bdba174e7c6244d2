"""Accounts and their applications.

An account holds the API key and secret (Basic auth); every account has one *default*
application, made with it, on which Basic-authenticated calls act. Other applications
authenticate with RS256 JWTs against the public key stored here.

API secrets are kept only as salted SHA-256 hashes. A slow KDF would buy nothing for the
random 128-bit secrets meetd generates and would cost every Basic-authenticated request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from typing import Any

from meetd.domain.randomness import new_uuid
from meetd.errors import ConflictError, NotFoundError
from meetd.store.database import Connection, Reader

CALLBACK_COLUMNS = ("rooms_callback_url", "sessions_callback_url", "recordings_callback_url")


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    api_key: str
    default_application_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Application:
    id: str
    account_id: str
    name: str
    is_default: bool
    public_key_pem: str | None
    signature_secret: str
    callback_urls: dict[str, str | None]
    default_theme_id: str | None


def hash_secret(secret: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
    return f"sha256${salt}${digest}"


def secret_matches(secret: str, stored: str) -> bool:
    """Constant-time comparison of a presented secret with its stored hash."""
    _, salt, _ = stored.split("$", 2)
    return hmac.compare_digest(hash_secret(secret, salt), stored)


def is_possible_credential(text: str, *, is_key: bool) -> bool:
    """Whether ``text`` could be an API key (``is_key``) or secret: not empty and printable.

    Credentials travel in a Basic header, so a NUL, control characters or a lone surrogate
    could never arrive intact (and PostgreSQL cannot store a NUL), and a key never holds the
    colon that ends it there. Accounts are created only with such credentials, so Basic auth
    refuses any other key without asking the database."""
    return text.isprintable() and bool(text) and not (is_key and ":" in text)


def new_api_key() -> str:
    return secrets.token_hex(4)


def new_api_secret() -> str:
    return secrets.token_urlsafe(16)


def create_account(
    conn: Connection, *, name: str, api_key: str, api_secret: str, now_ms: int
) -> Account:
    if conn.fetchone("SELECT 1 FROM accounts WHERE api_key = ?", (api_key,)):
        raise ConflictError(f"an account with API key {api_key} already exists")
    account_id = new_uuid()
    conn.execute(
        "INSERT INTO accounts (id, name, api_key, api_secret_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (account_id, name, api_key, hash_secret(api_secret), now_ms),
    )
    application = create_application(
        conn, account_id=account_id, name=f"{name} (default)", is_default=True, now_ms=now_ms
    )
    return Account(account_id, name, api_key, application.id)


def create_application(
    conn: Connection,
    *,
    account_id: str,
    name: str,
    now_ms: int,
    is_default: bool = False,
    public_key_pem: str | None = None,
    callback_urls: dict[str, str | None] | None = None,
) -> Application:
    urls = {column: (callback_urls or {}).get(column) for column in CALLBACK_COLUMNS}
    application = Application(
        id=new_uuid(),
        account_id=account_id,
        name=name,
        is_default=is_default,
        public_key_pem=public_key_pem,
        signature_secret=secrets.token_urlsafe(32),
        callback_urls=urls,
        default_theme_id=None,
    )
    conn.execute(
        "INSERT INTO applications (id, account_id, name, is_default, public_key_pem,"
        " signature_secret, rooms_callback_url, sessions_callback_url, recordings_callback_url,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            application.id,
            account_id,
            name,
            is_default,
            public_key_pem,
            application.signature_secret,
            *urls.values(),
            now_ms,
        ),
    )
    return application


async def find_account_by_key(conn: Reader, api_key: str) -> tuple[Account, str] | None:
    """The account with this API key and its stored secret hash."""
    row = await conn.row(
        "SELECT a.id, a.name, a.api_key, p.id, a.api_secret_hash FROM accounts a"
        " JOIN applications p ON p.account_id = a.id AND p.is_default WHERE a.api_key = ?",
        (api_key,),
    )
    return None if row is None else (Account(*row[:4]), row[4])


_APPLICATION = (
    "SELECT id, account_id, name, is_default, public_key_pem, signature_secret,"
    " rooms_callback_url, sessions_callback_url, recordings_callback_url, default_theme_id"
    " FROM applications"
)


def _application(row: Any) -> Application:
    return Application(
        row[0],
        row[1],
        row[2],
        bool(row[3]),
        row[4],
        row[5],
        dict(zip(CALLBACK_COLUMNS, row[6:9], strict=True)),
        row[9],
    )


async def get_application(conn: Reader, application_id: str) -> Application:
    row = await conn.row(f"{_APPLICATION} WHERE id = ?", (application_id,))
    if row is None:
        raise NotFoundError(f"application {application_id} not found")
    return _application(row)


async def update_application(
    conn: Connection,
    application_id: str,
    *,
    public_key_pem: str | None = None,
    callback_urls: dict[str, str | None] | None = None,
) -> Application:
    """Change an application's key or callback URLs; an empty URL string clears one."""
    current = await get_application(conn, application_id)
    urls = dict(current.callback_urls)
    for column, url in (callback_urls or {}).items():
        if url is not None:
            urls[column] = url or None
    conn.execute(
        "UPDATE applications SET public_key_pem = ?, rooms_callback_url = ?,"
        " sessions_callback_url = ?, recordings_callback_url = ? WHERE id = ?",
        (public_key_pem or current.public_key_pem, *urls.values(), application_id),
    )
    return await get_application(conn, application_id)


def create_first_account(
    conn: Connection, *, api_key: str, api_secret: str, now_ms: int
) -> Account | None:
    """Create an account only when there is none; None when one exists already.

    Several servers may start together on one empty database: the lock makes one of them
    create the account and the others see it.
    """
    if conn.dialect == "postgresql":
        conn.execute("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE")
    if count_accounts(conn):
        return None
    return create_account(
        conn, name="default", api_key=api_key, api_secret=api_secret, now_ms=now_ms
    )


def count_accounts(conn: Connection) -> int:
    return int(conn.fetchone("SELECT COUNT(*) FROM accounts")[0])


async def find_account_by_reference(conn: Reader, reference: str) -> Account | None:
    """An account by its API key or its id (the CLI accepts either)."""
    row = await conn.row(
        "SELECT a.id, a.name, a.api_key, p.id FROM accounts a"
        " JOIN applications p ON p.account_id = a.id AND p.is_default"
        " WHERE a.api_key = ? OR a.id = ?",
        (reference, reference),
    )
    return None if row is None else Account(*row)


async def list_accounts(conn: Reader) -> list[tuple[Account, int]]:
    """Every account with its creation time (ms), oldest first; no secret hashes."""
    rows = await conn.rows(
        "SELECT a.id, a.name, a.api_key, p.id, a.created_at FROM accounts a"
        " JOIN applications p ON p.account_id = a.id AND p.is_default"
        " ORDER BY a.created_at, a.id"
    )
    return [(Account(*row[:4]), int(row[4])) for row in rows]


async def list_applications(conn: Reader, account_id: str | None = None) -> list[Application]:
    """Every application, or one account's, oldest first."""
    if account_id is None:
        rows = await conn.rows(f"{_APPLICATION} ORDER BY created_at, id")
    else:
        rows = await conn.rows(
            f"{_APPLICATION} WHERE account_id = ? ORDER BY created_at, id", (account_id,)
        )
    return [_application(row) for row in rows]
