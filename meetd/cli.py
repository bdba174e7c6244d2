"""The ``meetd`` command line: options -> Settings -> run. Thin on purpose.

Every command takes ``--data-dir`` and ``--database-url`` after the subcommand, so all act on
the same state as ``serve``. Commands that create something take ``--json`` and then print
exactly one JSON object on stdout; progress and messages go to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from meetd import __version__
from meetd.cli_support import (
    Commands,
    F,
    emit,
    json_option,
    now_ms,
    open_store,
    reports_errors,
    say,
    settings_from,
    store_options,
    table,
)
from meetd.errors import MeetdError

if TYPE_CHECKING:
    from meetd.store.accounts import Account
    from meetd.store.database import Database


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meetd")
def main() -> None:
    """meetd: a self-hosted meetings server speaking the Vonage Meetings API."""


# -- serve -------------------------------------------------------------------------------------
@main.command()
@click.option("--host", help="Interface to listen on [env MEETD_HOST; default 127.0.0.1]")
@click.option("--port", type=int, help="Port [env MEETD_PORT; default 8080]")
@click.option("--public-url", help="External base URL for links [env MEETD_PUBLIC_URL]")
@click.option(
    "--tls-certfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM certificate chain: serve HTTPS [env MEETD_TLS_CERTFILE]",
)
@click.option(
    "--tls-keyfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM private key of the certificate [env MEETD_TLS_KEYFILE]",
)
@click.option("--workers", type=int, help="Server processes [env MEETD_WORKERS; default 1]")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Lowest level logged [env MEETD_LOG_LEVEL; default info]",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    help=(
        "One JSON object a line, or text "
        "[env MEETD_LOG_FORMAT; default text on a terminal, else json]"
    ),
)
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
@click.option(
    "--loop",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    default="auto",
    show_default=True,
    help="Event loop (auto: uvloop when installed).",
)
@click.option(
    "--http",
    type=click.Choice(["auto", "h11", "httptools"]),
    default="auto",
    show_default=True,
    help="HTTP/1.1 parser (auto: httptools when installed).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"url", "first_account"} as one JSON object once ready to serve.',
)
@store_options
@reports_errors
def serve(access_log: bool, loop: str, http: str, as_json: bool, **flags: Any) -> None:
    """Run the API: migrate the database, create the first account if there is none, serve."""
    from meetd import server
    from meetd.preflight import closed_on_failure

    settings, listeners = server.check(settings_from(**flags))
    with closed_on_failure(listeners), open_store(settings) as database:
        first_account = server.prepare(database, settings, announce=not as_json)
    if as_json:
        click.echo(json.dumps({"url": settings.public_url, "first_account": first_account}))
    server.run(settings, listeners, access_log=access_log, loop=loop, http=http)


def _find_account(database: Database, reference: str) -> Account:
    """The account with this API key or id; an error naming ``reference`` when none has it."""
    from meetd.store import accounts as store

    account = database.read_blocking(lambda c: store.find_account_by_reference(c, reference))
    if account is None:
        raise click.ClickException(f"no account with API key or id {reference!r}")
    return account


# -- accounts ----------------------------------------------------------------------------------
@main.group()
def accounts() -> None:
    """Accounts: API key and secret, each with a default application."""


@accounts.command("create")
@click.option(
    "--name",
    default="default",
    show_default=True,
    help="A label for your records; the default application is named 'NAME (default)'.",
)
@click.option("--api-key", help="Choose the API key (default: generated).")
@click.option("--api-secret", help="Choose the API secret (default: generated).")
@json_option
@store_options
@reports_errors
def accounts_create(
    name: str, api_key: str | None, api_secret: str | None, as_json: bool, **flags: Any
) -> None:
    """Create an account and its default application; print the secret once."""
    for flag, value in (("--api-key", api_key), ("--api-secret", api_secret)):
        if value == "":
            raise click.BadParameter(
                "is empty (leave out both --api-key and --api-secret to have them generated)",
                param_hint=flag,
            )
    if bool(api_key) != bool(api_secret):
        raise click.UsageError("--api-key and --api-secret go together")
    from meetd.store.accounts import is_possible_credential

    if api_key and not is_possible_credential(api_key, is_key=True):
        raise click.BadParameter("must be printable text without a colon", param_hint="--api-key")
    if api_secret and not is_possible_credential(api_secret, is_key=False):
        raise click.BadParameter("must be printable text", param_hint="--api-secret")
    settings = settings_from(**flags)
    from meetd.credentials import create_account

    with open_store(settings, migrate=True) as database:
        created = create_account(database, name, api_key, api_secret)
    emit(
        as_json,
        created,
        [
            f"account {created['account_id']} created",
            f"  API key:        {created['api_key']}",
            f"  API secret:     {created['api_secret']}   (shown only now)",
            f"  Application ID: {created['application_id']}",
            f"  Signature secret (verifies callbacks): {created['signature_secret']}",
        ],
    )


@accounts.command("list")
@json_option
@store_options
@reports_errors
def accounts_list(as_json: bool, **flags: Any) -> None:
    """Show every account's API key and default application (never a secret), oldest first."""
    from meetd.domain.timestamps import format_timestamp
    from meetd.store import accounts as store

    settings = settings_from(**flags)
    with open_store(settings, migrate=True) as database:
        found = database.read_blocking(store.list_accounts)
    listed = [
        {
            "account_id": account.id,
            "name": account.name,
            "api_key": account.api_key,
            "application_id": account.default_application_id,
            "created_at": format_timestamp(created_at_ms),
        }
        for account, created_at_ms in found
    ]
    if not listed and not as_json:
        say("no accounts")
    header = ["API KEY", "ACCOUNT ID", "DEFAULT APPLICATION ID", "CREATED AT", "NAME"]
    columns = ("api_key", "account_id", "application_id", "created_at", "name")
    rows = [[entry[column] for column in columns] for entry in listed]
    emit(as_json, {"accounts": listed}, table(header, rows) if rows else [])


# -- applications ------------------------------------------------------------------------------
def callback_options(*, clears: bool) -> Callable[[F], F]:
    """``--rooms-``, ``--sessions-`` and ``--recordings-callback-url``; with ``clears`` (on
    update) the help says that '' clears a URL set before, which means nothing on create."""

    def add(command: F) -> F:
        for kind in ("recordings", "sessions", "rooms"):
            command = click.option(
                f"--{kind}-callback-url",
                help=f"Where {kind} events are POSTed" + (" ('' clears it)." if clears else "."),
            )(command)
        return command

    return add


def _callback_urls(flags: dict[str, Any]) -> dict[str, str | None]:
    urls = {}
    for kind in ("rooms", "sessions", "recordings"):
        url = flags.pop(f"{kind}_callback_url")
        if url:
            from meetd.domain.validation import http_url

            try:
                http_url(url, f"--{kind}-callback-url")
            except MeetdError as error:
                raise click.UsageError(error.message) from None
        urls[f"{kind}_callback_url"] = url
    return urls


def _read_public_key(path: Path) -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        pem = path.read_text()
        key = load_pem_public_key(pem.encode())
    except (OSError, ValueError) as error:
        raise click.UsageError(f"{path}: not a PEM public key ({error})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise click.UsageError(f"{path}: the key must be RSA (JWTs are RS256)")
    return pem


def _generate_key_pair(out: Path) -> str:
    """Write a new RSA private key to ``out`` (mode 600); return its public key PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.UsageError(f"{out} exists; choose another file") from None
    except OSError as error:
        raise click.UsageError(f"{out}: cannot create the key file ({error.strerror})") from None
    with os.fdopen(fd, "wb") as file:
        file.write(private)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@main.group()
def applications() -> None:
    """Applications: what API calls act on, with their JWT keys and callback URLs."""


@applications.command("create")
@click.option("--account", "account_ref", required=True, help="The account's API key (or id).")
@click.option("--name", default="application", show_default=True, help="A label for your records.")
@click.option(
    "--public-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="RSA public key (PEM) that verifies the application's JWTs.",
)
@click.option(
    "--generate-private-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Generate a key pair; write the private key (PEM) to this file.",
)
@callback_options(clears=False)
@json_option
@store_options
@reports_errors
def applications_create(
    account_ref: str,
    name: str,
    public_key_file: Path | None,
    generate_private_key: Path | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Create an application of an account."""
    from meetd.store import accounts as store

    if public_key_file and generate_private_key:
        raise click.UsageError("give --public-key-file or --generate-private-key, not both")
    urls = _callback_urls(flags)
    settings = settings_from(**flags)
    pem = _read_public_key(public_key_file) if public_key_file else None
    with open_store(settings, migrate=True) as database:
        account = _find_account(database, account_ref)
        if generate_private_key:
            pem = _generate_key_pair(generate_private_key)
        application = database.write_blocking(
            lambda c: store.create_application(
                c,
                account_id=account.id,
                name=name,
                now_ms=now_ms(),
                public_key_pem=pem,
                callback_urls=urls,
            )
        )
    data = {
        "application_id": application.id,
        "account_id": application.account_id,
        "signature_secret": application.signature_secret,
    }
    lines = [
        f"application {application.id} created for account {account.api_key}",
        f"  signature secret: {application.signature_secret}",
    ]
    if generate_private_key:
        data["private_key_file"] = str(generate_private_key.resolve())
        lines.append(f"  private key:      {data['private_key_file']}")
    emit(as_json, data, lines)
    if pem is None:  # on stderr, with --json too: stdout keeps its one JSON object
        update = f"{click.get_current_context().find_root().info_name} applications update"
        say(
            f"warning: nothing can authenticate as application {application.id} yet: without "
            "a public key it takes no JWTs, and Basic auth (API key and secret) acts only on "
            "the account's default application; add a key with: "
            f"{update} {application.id} --public-key-file PUBLIC_KEY.pem"
        )


@applications.command("update")
@click.argument("application_id")
@click.option(
    "--public-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A new RSA public key (PEM) for the application's JWTs.",
)
@callback_options(clears=True)
@json_option
@store_options
@reports_errors
def applications_update(
    application_id: str, public_key_file: Path | None, as_json: bool, **flags: Any
) -> None:
    """Change an application's public key or callback URLs."""
    from meetd.store import accounts as store

    urls = _callback_urls(flags)
    if public_key_file is None and all(url is None for url in urls.values()):
        raise click.UsageError(
            "nothing to change: give --public-key-file or a --rooms-, --sessions- or "
            "--recordings-callback-url ('' clears one)"
        )
    settings = settings_from(**flags)
    pem = _read_public_key(public_key_file) if public_key_file else None
    with open_store(settings, migrate=True) as database:
        application = database.write_blocking(
            lambda c: store.update_application(
                c, application_id, public_key_pem=pem, callback_urls=urls
            )
        )
    data = {
        "application_id": application.id,
        "account_id": application.account_id,
        "has_public_key": application.public_key_pem is not None,
        **application.callback_urls,
    }
    lines = [
        f"application {application.id} updated",
        f"  public key: {'set' if data['has_public_key'] else '(none)'}",
        *(f"  {key}: {value or '(none)'}" for key, value in application.callback_urls.items()),
    ]
    emit(as_json, data, lines)


@applications.command("list")
@click.option(
    "--account", "account_ref", help="Only this account's applications: its API key (or id)."
)
@json_option
@store_options
@reports_errors
def applications_list(account_ref: str | None, as_json: bool, **flags: Any) -> None:
    """Show the applications (never a secret), oldest first."""
    from meetd.store import accounts as store

    settings = settings_from(**flags)
    with open_store(settings, migrate=True) as database:
        account_id = _find_account(database, account_ref).id if account_ref is not None else None
        found = database.read_blocking(lambda c: store.list_applications(c, account_id))
    listed = [
        {
            "application_id": application.id,
            "account_id": application.account_id,
            "name": application.name,
            "is_default": application.is_default,
            "has_public_key": application.public_key_pem is not None,
            **application.callback_urls,
        }
        for application in found
    ]
    if not listed and not as_json:
        say("no applications")
    header = ["APPLICATION ID", "ACCOUNT ID", "DEFAULT", "PUBLIC KEY", "NAME"]
    rows = [
        [
            entry["application_id"],
            entry["account_id"],
            "yes" if entry["is_default"] else "no",
            "yes" if entry["has_public_key"] else "no",
            entry["name"],
        ]
        for entry in listed
    ]
    rendered = table(header, rows)
    lines = rendered[:1] if rows else []
    for line, application in zip(rendered[1:], found, strict=True):
        lines.append(line)
        lines += [f"  {key}: {url}" for key, url in application.callback_urls.items() if url]
    emit(as_json, {"applications": listed}, lines)


# -- dial-in numbers ---------------------------------------------------------------------------
@main.group("dial-in-numbers")
def dial_in_numbers() -> None:
    """Dial-in numbers: the list GET /dial-in-numbers shows every application."""


@dial_in_numbers.command("add")
@click.argument("number")
@click.option("--locale", required=True, help="BCP 47 language tag, e.g. en-GB or es-AR.")
@click.option("--display-name", required=True, help="What callers see, e.g. 'United Kingdom'.")
@json_option
@store_options
@reports_errors
def dial_in_numbers_add(
    number: str, locale: str, display_name: str, as_json: bool, **flags: Any
) -> None:
    """Add NUMBER (E.164; '+44 23 8192 4626' is kept as 442381924626)."""
    from meetd.domain.dial_in_numbers import parse_dial_in_number
    from meetd.store import dial_in_numbers as store

    entry = parse_dial_in_number(number, locale, display_name)
    settings = settings_from(**flags)
    with open_store(settings, migrate=True) as database:
        database.write_blocking(lambda c: store.add_dial_in_number(c, entry, now_ms=now_ms()))
    emit(
        as_json,
        dataclasses.asdict(entry),
        [f"dial-in number {entry.number} added ({entry.locale}, {entry.display_name})"],
    )


@dial_in_numbers.command("remove")
@click.argument("number")
@json_option
@store_options
@reports_errors
def dial_in_numbers_remove(number: str, as_json: bool, **flags: Any) -> None:
    """Remove NUMBER, however it is written ('+44 23 8192 4626' or 442381924626)."""
    from meetd.domain.dial_in_numbers import parse_number
    from meetd.store import dial_in_numbers as store

    digits = parse_number(number)
    settings = settings_from(**flags)
    with open_store(settings, migrate=True) as database:
        removed = database.write_blocking(lambda c: store.remove_dial_in_number(c, digits))
    emit(as_json, dataclasses.asdict(removed), [f"dial-in number {removed.number} removed"])


@dial_in_numbers.command("list")
@json_option
@store_options
@reports_errors
def dial_in_numbers_list(as_json: bool, **flags: Any) -> None:
    """Show the numbers, in the order they were added."""
    from meetd.store import dial_in_numbers as store

    settings = settings_from(**flags)
    with open_store(settings, migrate=True) as database:
        numbers = database.read_blocking(store.list_dial_in_numbers)
    if not numbers and not as_json:
        say("no dial-in numbers")
    emit(
        as_json,
        {"dial_in_numbers": [dataclasses.asdict(entry) for entry in numbers]},
        [f"{n.number:<16} {n.locale:<12} {n.display_name}" for n in numbers],
    )


# -- db ----------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@json_option
@store_options
@reports_errors
def db_upgrade(as_json: bool, **flags: Any) -> None:
    """Apply pending migrations (serve does this too)."""
    from meetd.store import migrations

    settings = settings_from(**flags)
    with open_store(settings) as database:
        applied = database.write_blocking(migrations.upgrade)
    emit(
        as_json,
        {"applied": applied, "version": migrations.LATEST_VERSION},
        [
            f"applied migrations {', '.join(map(str, applied))}" if applied else "up to date",
            f"schema version {migrations.LATEST_VERSION}",
        ],
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
