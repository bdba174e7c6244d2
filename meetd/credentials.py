"""New accounts and the credentials the command line shows once: made by ``accounts create``
and, on an empty database, by ``serve``. Both print the same fields (docs/running.md)."""

from __future__ import annotations

import time

from meetd.store import accounts
from meetd.store.database import Connection, Database, run_now


def create_account(
    database: Database, name: str, api_key: str | None, api_secret: str | None
) -> dict[str, str]:
    """A new account (key and secret generated unless given) and its credentials."""
    key = api_key or accounts.new_api_key()
    secret = api_secret or accounts.new_api_secret()

    def create(conn: Connection) -> tuple[accounts.Account, str]:
        account = accounts.create_account(
            conn, name=name, api_key=key, api_secret=secret, now_ms=_now()
        )
        return account, _signature_secret(conn, account)

    account, signature_secret = database.write_blocking(create)
    return _credentials(account, signature_secret, key, secret)


def create_first_account(database: Database) -> dict[str, str] | None:
    """The first account's credentials when the database had none, else None (another
    server starting at the same moment may have made it)."""
    key, secret = accounts.new_api_key(), accounts.new_api_secret()

    def create(conn: Connection) -> tuple[accounts.Account, str] | None:
        account = accounts.create_first_account(conn, api_key=key, api_secret=secret, now_ms=_now())
        return None if account is None else (account, _signature_secret(conn, account))

    first = database.write_blocking(create)
    if first is None:
        return None
    return _credentials(*first, key, secret)


def _signature_secret(conn: Connection, account: accounts.Account) -> str:
    """The default application's: it signs the callbacks to that application
    (docs/callbacks.md)."""
    return run_now(accounts.get_application(conn, account.default_application_id)).signature_secret


def _credentials(
    account: accounts.Account, signature_secret: str, key: str, secret: str
) -> dict[str, str]:
    return {
        "account_id": account.id,
        "api_key": key,
        "api_secret": secret,
        "application_id": account.default_application_id,
        "signature_secret": signature_secret,
    }


def _now() -> int:
    return time.time_ns() // 1_000_000
