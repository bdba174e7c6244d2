"""The ``meetd`` command line, as the operations contract fixes it ("The command line").

Most commands run in-process through click's CliRunner against a real database (SQLite, and
PostgreSQL where the ``database_url`` fixture says so); what the API then makes of their
output is checked through ``create_app`` on the same database. The console script itself
runs as a real process, and so does ``meetd serve`` (``test_serve.py``).
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from meetd.cli import main
from meetd.cli_support import one_line
from meetd.errors import ConfigurationError
from meetd.settings import ENVIRONMENT_VARIABLES
from meetd.store import accounts
from meetd.store.database import open_database
from tests import support
from tests.cli.runner import (
    ACCOUNT_KEYS,
    APPLICATION_KEYS,
    api_client,
    create_room,
    meetd,
    one_json_object,
    refused,
)
from tests.e2e_lifetime.servers import (
    clean_environment,
    meetd_command,
)
from tests.support import free_port


# -- help --------------------------------------------------------------------------------------
def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


ALL_PATHS = list(command_paths(main))


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda path: " ".join(path) or "meetd")
def test_help_works_everywhere(path: tuple[str, ...]) -> None:
    for flag in ("--help", "-h"):
        result = meetd(*path, flag)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Usage: ")
    command = main
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    if not isinstance(command, click.Group):
        help_text = meetd(*path, "--help").stdout
        assert "--data-dir" in help_text and "--database-url" in help_text


@pytest.mark.parametrize("path", [p for p in ALL_PATHS if p], ids=" ".join)
def test_every_option_with_a_variable_names_it_in_help(path: tuple[str, ...]) -> None:
    """serve --help named MEETD_HOST but not MEETD_TLS_CERTFILE or MEETD_LOG_LEVEL."""
    command: Any = main
    for name in path:
        command = command.commands[name]
    for param in command.params:
        variable = f"MEETD_{(param.name or '').upper()}"
        if isinstance(param, click.Option) and variable in ENVIRONMENT_VARIABLES:
            assert f"env {variable}" in (param.help or ""), f"{param.opts} lacks {variable}"


@pytest.mark.parametrize("path", [p for p in ALL_PATHS if p], ids=" ".join)
def test_every_option_has_help(path: tuple[str, ...]) -> None:
    """accounts create --name and applications create --name had none."""
    command: Any = main
    for name in path:
        command = command.commands[name]
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"`meetd {' '.join(path)} {param.opts[0]}` has no help"


def test_only_update_says_that_an_empty_callback_url_clears_it() -> None:
    """applications create --help said "'' clears it": there is nothing to clear yet."""
    create = meetd("applications", "create", "--help").stdout
    update = " ".join(meetd("applications", "update", "--help").stdout.split())
    for kind in ("rooms", "sessions", "recordings"):
        assert f"--{kind}-callback-url TEXT Where {kind} events are POSTed ('' clears it)." in (
            update
        )
    assert "clears" not in create and "Where rooms events are POSTed." in create


# The commands the operations contract names, with the options it names.
CONTRACT = {
    ("serve",): [
        "--host",
        "--port",
        "--public-url",
        "--tls-certfile",
        "--tls-keyfile",
        "--workers",
    ],
    ("accounts", "create"): ["--name", "--api-key", "--api-secret", "--json"],
    ("applications", "create"): [
        "--account",
        "--name",
        "--public-key-file",
        "--generate-private-key",
        "--rooms-callback-url",
        "--sessions-callback-url",
        "--recordings-callback-url",
        "--json",
    ],
    ("applications", "update"): [
        "--public-key-file",
        "--rooms-callback-url",
        "--sessions-callback-url",
        "--recordings-callback-url",
        "--json",
    ],
    ("dial-in-numbers", "add"): ["--locale", "--display-name", "--json"],
    ("dial-in-numbers", "remove"): ["--json"],
    ("dial-in-numbers", "list"): ["--json"],
    ("db", "upgrade"): [],
}


@pytest.mark.parametrize(
    ("path", "options"), [pytest.param(*item, id=" ".join(item[0])) for item in CONTRACT.items()]
)
def test_every_contract_command_and_option_exists(
    path: tuple[str, ...], options: list[str]
) -> None:
    result = meetd(*path, "--help")
    assert result.exit_code == 0, f"`meetd {' '.join(path)}` is missing: {result.output}"
    for option in [*options, "--data-dir", "--database-url"]:
        assert option in result.stdout, f"`meetd {' '.join(path)}` lacks {option}"


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--data-dir", "X", "serve"], "Put it after the command: main serve --data-dir …"),
        (["--data-dir=X", "serve", "--port", "1"], "after the command: main serve --data-dir …"),
        (["--port", "1", "serve"], "Put it after the command: main serve --port …"),
        (
            ["--database-url", "sqlite:///x.db", "accounts", "create"],
            "Put it after the command: main accounts create --database-url …",
        ),
        (
            ["accounts", "--data-dir", "X", "create"],
            "Put it after the command: main accounts create --data-dir …",
        ),
        (
            ["--json", "dial-in-numbers", "list"],
            "Put it after the command: main dial-in-numbers list --json\n",  # a flag: no value
        ),
        (
            ["--data-dir", "X"],
            "Put it after the command it is for, as in: main accounts create --data-dir …",
        ),
        (
            ["--data-dir", "X", "applications"],
            "Put it after the command it is for, as in: main applications create --data-dir …",
        ),
    ],
)
def test_an_option_before_its_command_says_where_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], hint: str
) -> None:
    """`meetd --data-dir X serve` said only "No such option '--data-dir'"."""
    monkeypatch.chdir(tmp_path)
    result = meetd(*args)
    name = args[0 if args[0] != "accounts" else 1].partition("=")[0]
    message = refused(result, 2, f"Error: No such option '{name}'. ", hint)
    assert message.split("Error: ")[1].count("\n") == 1
    assert not (tmp_path / "X").exists()


@pytest.mark.parametrize(
    "args",
    [["--nonsense", "serve"], ["--port", "1", "db", "upgrade"], ["db", "--port", "1", "upgrade"]],
)
def test_an_option_no_command_there_takes_gets_clicks_message(args: list[str]) -> None:
    message = refused(meetd(*args), 2, "Error: No such option")
    assert "Put it after" not in message and message.endswith("'.\n"), message


def test_version() -> None:
    result = meetd("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("meetd, version ")


@pytest.mark.parametrize("command", [meetd_command(), [sys.executable, "-m", "meetd"]])
def test_the_console_script_and_python_m_run(command: list[str]) -> None:
    done = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, env=clean_environment()
    )
    assert done.returncode == 0, done.stderr
    assert "accounts" in done.stdout and "serve" in done.stdout


# -- accounts create ---------------------------------------------------------------------------
def test_accounts_create_json_and_the_credentials_work(
    store: list[str], data_dir: Path, database_url: str
) -> None:
    created = one_json_object(meetd("accounts", "create", "--json", *store))
    assert set(created) == ACCOUNT_KEYS
    assert all(isinstance(value, str) and value for value in created.values())
    with api_client(data_dir, database_url) as client:
        headers = support.basic_header(created["api_key"], created["api_secret"])
        response = create_room(client, headers)
        assert response.status_code == 201, response.text
        wrong = support.basic_header(created["api_key"], created["api_secret"] + "x")
        assert create_room(client, wrong).status_code == 401


def test_accounts_create_makes_different_accounts(store: list[str]) -> None:
    first = one_json_object(meetd("accounts", "create", "--json", *store))
    second = one_json_object(meetd("accounts", "create", "--json", "--name", "two", *store))
    for key in ACCOUNT_KEYS:
        assert first[key] != second[key]


def test_accounts_create_with_chosen_key_and_secret(
    store: list[str], data_dir: Path, database_url: str
) -> None:
    result = meetd(
        "accounts", "create", "--api-key", "mykey", "--api-secret", "my-secret", "--json", *store
    )
    created = one_json_object(result)
    assert (created["api_key"], created["api_secret"]) == ("mykey", "my-secret")
    with api_client(data_dir, database_url) as client:
        response = create_room(client, support.basic_header("mykey", "my-secret"))
        assert response.status_code == 201, response.text


def test_accounts_create_duplicate_key_fails_clearly(store: list[str]) -> None:
    first = meetd("accounts", "create", "--api-key", "dup", "--api-secret", "s1", "--json", *store)
    one_json_object(first)
    again = meetd("accounts", "create", "--api-key", "dup", "--api-secret", "s2", "--json", *store)
    message = refused(again, 1, "dup", "already exists")
    assert message.startswith("Error: ") and message.count("\n") == 1


def test_accounts_create_text_output_shows_the_secret(store: list[str]) -> None:
    result = meetd("accounts", "create", "--api-key", "textkey", "--api-secret", "sec", *store)
    assert result.exit_code == 0, result.output
    assert "textkey" in result.stdout and "sec" in result.stdout


@pytest.mark.parametrize(
    ("given", "phrase"),
    [
        (["--api-key", "a\x00b", "--api-secret", "s"], "--api-key"),
        (["--api-key", "a:b", "--api-secret", "s"], "--api-key"),
        (["--api-key", "a\tb", "--api-secret", "s"], "--api-key"),
        (["--api-key", "k", "--api-secret", "s\x00"], "--api-secret"),
        (["--api-key", "k", "--api-secret", "s\n"], "--api-secret"),
    ],
)
def test_credentials_basic_auth_could_not_carry_are_refused(
    store: list[str], given: list[str], phrase: str
) -> None:
    refused(meetd("accounts", "create", *given, *store), 2, phrase, "printable")


@pytest.mark.parametrize(
    ("given", "empty"),
    [
        (["--api-key", "", "--api-secret", "s"], "--api-key"),
        (["--api-key", "k", "--api-secret", ""], "--api-secret"),
        (["--api-key", ""], "--api-key"),
    ],
)
def test_an_empty_api_key_or_secret_is_named(
    store: list[str], given: list[str], empty: str
) -> None:
    """--api-key '' was told that --api-key and --api-secret go together."""
    message = refused(meetd("accounts", "create", *given, *store), 2, empty, "empty")
    assert "go together" not in message


def test_a_bad_flag_is_named_as_the_flag(data_dir: Path) -> None:
    result = meetd("serve", "--port", "99999", "--data-dir", str(data_dir))
    message = refused(result, 2, "--port", "99999")
    assert "MEETD_PORT" not in message
    result = meetd("db", "upgrade", "--database-url", "mysql://db/x")
    message = refused(result, 2, "--database-url must start with")
    assert "MEETD_DATABASE_URL" not in message


@pytest.mark.parametrize("given", [["--api-key", "k"], ["--api-secret", "s"]])
def test_api_key_and_secret_go_together(store: list[str], given: list[str]) -> None:
    refused(meetd("accounts", "create", *given, *store), 2, "--api-key and --api-secret")


# -- applications create -----------------------------------------------------------------------
@pytest.fixture
def account(store: list[str]) -> dict[str, Any]:
    return one_json_object(meetd("accounts", "create", "--json", *store))


def test_applications_create_with_a_generated_key(
    store: list[str], account: dict[str, Any], tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    out = tmp_path / "keys" / "app.pem"
    out.parent.mkdir()
    result = meetd(
        "applications",
        "create",
        "--account",
        account["api_key"],
        "--generate-private-key",
        str(out),
        "--json",
        *store,
    )
    created = one_json_object(result)
    assert set(created) == {*APPLICATION_KEYS, "private_key_file"}
    assert created["account_id"] == account["account_id"]
    assert created["application_id"] != account["application_id"]
    assert Path(created["private_key_file"]) == out.resolve()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    pem = out.read_text()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size >= 2048

    # The key works: a JWT it signs authenticates as the new application.
    with api_client(data_dir, database_url) as client:
        token = support.sign_jwt(created["application_id"], key=pem)
        headers = {"Authorization": f"Bearer {token}"}
        response = create_room(client, headers)
        assert response.status_code == 201, response.text
        rooms = client.get("/v1/meetings/rooms", headers=headers).json()
        assert rooms["total_items"] == 1  # the room belongs to the new application
        other = support.sign_jwt(account["application_id"], key=pem)
        assert create_room(client, {"Authorization": f"Bearer {other}"}).status_code == 401


def test_applications_create_with_a_public_key_file(
    store: list[str], account: dict[str, Any], tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    public = tmp_path / "public.pem"
    public.write_text(support.PUBLIC_KEY_PEM)
    result = meetd(
        "applications",
        "create",
        "--account",
        account["account_id"],  # the id works as well as the API key
        "--public-key-file",
        str(public),
        "--rooms-callback-url",
        "https://hooks.example.com/rooms",
        "--json",
        *store,
    )
    created = one_json_object(result)
    assert set(created) == APPLICATION_KEYS
    assert created["account_id"] == account["account_id"]
    with api_client(data_dir, database_url) as client:
        headers = support.bearer_header(created["application_id"])
        assert create_room(client, headers).status_code == 201


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_applications_create_without_a_key_warns_how_to_add_one(
    store: list[str],
    account: dict[str, Any],
    tmp_path: Path,
    data_dir: Path,
    database_url: str,
    as_json: bool,
) -> None:
    """It made, silently, an application nothing could authenticate as: Basic auth reaches
    only the account's default application, and JWTs need a public key. The warning goes to
    stderr (stdout keeps --json's one object) and its command adds a key."""
    json_flag = ["--json"] if as_json else []
    result = meetd("applications", "create", "--account", account["api_key"], *json_flag, *store)
    assert result.exit_code == 0, result.output
    if as_json:
        created = one_json_object(result)
        assert set(created) == APPLICATION_KEYS
        application_id = created["application_id"]
    else:
        application_id = result.stdout.split()[1]
        assert "warning" not in result.stdout
    warning = result.stderr
    assert warning.startswith("warning: nothing can authenticate as application ")
    assert warning.count("\n") == 1 and "JWT" in warning and "Basic auth" in warning
    command = warning.split("add a key with: ")[1].split()
    assert command == [
        "main", "applications", "update", application_id, "--public-key-file", "PUBLIC_KEY.pem"
    ]  # fmt: skip

    public = tmp_path / "PUBLIC_KEY.pem"
    public.write_text(support.PUBLIC_KEY_PEM)
    command[-1] = str(public)
    one_json_object(meetd(*command[1:], "--json", *store))
    with api_client(data_dir, database_url) as client:
        assert create_room(client, support.bearer_header(application_id)).status_code == 201


def test_applications_create_with_a_key_does_not_warn(
    store: list[str], account: dict[str, Any], tmp_path: Path
) -> None:
    public = tmp_path / "public.pem"
    public.write_text(support.PUBLIC_KEY_PEM)
    for key in (
        ["--public-key-file", str(public)],
        ["--generate-private-key", str(tmp_path / "k")],
    ):
        result = meetd("applications", "create", "--account", account["api_key"], *key, *store)
        assert result.exit_code == 0, result.output
        assert result.stderr == ""


def _ec_public_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("not a key\n", "not a PEM public key"),
        ("", "not a PEM public key"),
        (support.PRIVATE_KEY_PEM, "not a PEM public key"),
        ("ec", "must be RSA"),
    ],
    ids=["garbage", "empty", "private-key", "ec-key"],
)
def test_applications_create_refuses_a_bad_key_file(
    store: list[str], account: dict[str, Any], tmp_path: Path, content: str, phrase: str
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text(_ec_public_key() if content == "ec" else content)
    result = meetd(
        "applications", "create", "--account", account["api_key"],
        "--public-key-file", str(bad), "--json", *store,
    )  # fmt: skip
    refused(result, 2, str(bad), phrase)


def test_applications_create_refuses_a_missing_key_file(
    store: list[str], account: dict[str, Any], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pem"
    result = meetd(
        "applications", "create", "--account", account["api_key"],
        "--public-key-file", str(missing), *store,
    )  # fmt: skip
    refused(result, 2, "missing.pem", "does not exist")


def test_applications_create_for_an_unknown_account(store: list[str], tmp_path: Path) -> None:
    out = tmp_path / "never.pem"
    result = meetd(
        "applications", "create", "--account", "nosuchkey",
        "--generate-private-key", str(out), "--json", *store,
    )  # fmt: skip
    refused(result, 1, "no account", "nosuchkey")
    assert not out.exists()  # no key written for an application never made


def test_applications_create_will_not_overwrite_a_key_file(
    store: list[str], account: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "existing.pem"
    out.write_text("precious")
    result = meetd(
        "applications", "create", "--account", account["api_key"],
        "--generate-private-key", str(out), *store,
    )  # fmt: skip
    refused(result, 2, "exists")
    assert out.read_text() == "precious"


def test_applications_create_into_a_missing_directory_fails_clearly(
    store: list[str], account: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "no-such-dir" / "app.pem"
    result = meetd(
        "applications", "create", "--account", account["api_key"],
        "--generate-private-key", str(out), *store,
    )  # fmt: skip
    refused(result, 2, str(out), "cannot create the key file", "No such file or directory")


def test_the_default_applications_signature_secret_signs_its_callbacks(
    store: list[str], data_dir: Path, database_url: str
) -> None:
    created = one_json_object(meetd("accounts", "create", "--json", *store))
    database = open_database(database_url)
    try:
        application = database.read_blocking(
            lambda c: accounts.get_application(c, created["application_id"])
        )
    finally:
        database.close()
    assert created["signature_secret"] == application.signature_secret
    assert len(created["signature_secret"]) >= 32


def test_applications_create_takes_one_kind_of_key(
    store: list[str], account: dict[str, Any], tmp_path: Path
) -> None:
    public = tmp_path / "public.pem"
    public.write_text(support.PUBLIC_KEY_PEM)
    result = meetd(
        "applications", "create", "--account", account["api_key"],
        "--public-key-file", str(public), "--generate-private-key", str(tmp_path / "o.pem"),
        *store,
    )  # fmt: skip
    refused(result, 2, "not both")


def test_applications_create_refuses_a_bad_callback_url(
    store: list[str], account: dict[str, Any]
) -> None:
    result = meetd(
        "applications", "create", "--account", account["api_key"],
        "--rooms-callback-url", "not-a-url", *store,
    )  # fmt: skip
    refused(result, 2, "--rooms-callback-url")


def test_applications_create_requires_an_account(store: list[str]) -> None:
    refused(meetd("applications", "create", "--json", *store), 2, "--account")


# -- applications update -----------------------------------------------------------------------
def test_applications_update_callback_urls(store: list[str], account: dict[str, Any]) -> None:
    application_id = account["application_id"]
    url = "https://hooks.example.com/rooms"
    result = meetd(
        "applications", "update", application_id, "--rooms-callback-url", url, "--json", *store
    )
    updated = one_json_object(result)
    assert updated["application_id"] == application_id
    assert updated["account_id"] == account["account_id"]
    assert updated["rooms_callback_url"] == url
    assert updated["sessions_callback_url"] is None

    # Another URL leaves the first alone; an empty one clears it.
    sessions = "https://hooks.example.com/sessions"
    result = meetd(
        "applications", "update", application_id, "--sessions-callback-url", sessions,
        "--json", *store,
    )  # fmt: skip
    updated = one_json_object(result)
    assert (updated["rooms_callback_url"], updated["sessions_callback_url"]) == (url, sessions)
    result = meetd(
        "applications", "update", application_id, "--rooms-callback-url", "", "--json", *store
    )
    updated = one_json_object(result)
    assert (updated["rooms_callback_url"], updated["sessions_callback_url"]) == (None, sessions)


def test_applications_update_public_key(
    store: list[str], account: dict[str, Any], tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    public = tmp_path / "public.pem"
    public.write_text(support.PUBLIC_KEY_PEM)
    application_id = account["application_id"]
    with api_client(data_dir, database_url) as client:
        assert create_room(client, support.bearer_header(application_id)).status_code == 401
    result = meetd(
        "applications", "update", application_id, "--public-key-file", str(public),
        "--json", *store,
    )  # fmt: skip
    assert one_json_object(result)["application_id"] == application_id
    with api_client(data_dir, database_url) as client:
        assert create_room(client, support.bearer_header(application_id)).status_code == 201


def test_applications_update_with_nothing_to_change_is_refused(
    store: list[str], account: dict[str, Any]
) -> None:
    """It said "application … updated" and changed nothing."""
    result = meetd("applications", "update", account["application_id"], "--json", *store)
    refused(result, 2, "nothing to change", "--public-key-file", "callback-url")


def test_applications_update_text_shows_unset_values_readably(
    store: list[str], account: dict[str, Any]
) -> None:
    url = "https://hooks.example.com/rooms"
    result = meetd(
        "applications", "update", account["application_id"], "--rooms-callback-url", url, *store
    )
    assert result.exit_code == 0, result.output
    assert "None" not in result.stdout
    assert f"rooms_callback_url: {url}" in result.stdout
    assert "sessions_callback_url: (none)" in result.stdout
    assert "public key: (none)" in result.stdout


def test_applications_update_unknown_application(store: list[str]) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    result = meetd("applications", "update", unknown, "--rooms-callback-url", "", *store)
    refused(result, 1, unknown, "not found")


def test_applications_update_refuses_a_bad_callback_url(
    store: list[str], account: dict[str, Any]
) -> None:
    result = meetd(
        "applications", "update", account["application_id"],
        "--recordings-callback-url", "ftp://x", *store,
    )  # fmt: skip
    refused(result, 2, "--recordings-callback-url")


# -- db upgrade --------------------------------------------------------------------------------
def test_db_upgrade(store: list[str]) -> None:
    first = one_json_object(meetd("db", "upgrade", "--json", *store))
    assert first["applied"] and first["applied"][-1] == first["version"]
    again = one_json_object(meetd("db", "upgrade", "--json", *store))
    assert again == {"applied": [], "version": first["version"]}
    text = meetd("db", "upgrade", *store)
    assert text.exit_code == 0 and "up to date" in text.stdout


def test_a_database_from_a_newer_meetd_stops_every_command(
    store: list[str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("meetd.server.run", lambda *a, **k: pytest.fail("serve started"))
    one_json_object(meetd("db", "upgrade", "--json", *store))
    database = open_database(database_url)
    try:
        database.write_blocking(
            lambda c: c.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'x', 0)"
            )
        )
    finally:
        database.close()
    port = str(free_port())
    for command in (["db", "upgrade"], ["accounts", "create"], ["serve", "--port", port]):
        refused(meetd(*command, *store), 1, "schema is version 99, newer than this meetd")


def test_an_unreachable_database_fails_clearly(data_dir: Path) -> None:
    """libpq's message went out on two lines ("…Connection refused", then "\tIs the server
    running…"); it is one line now, naming the URL."""
    url = "postgresql://127.0.0.1:1/nothing?connect_timeout=2"
    result = meetd("db", "upgrade", "--data-dir", str(data_dir), "--database-url", url)
    message = refused(result, 1, f"Error: cannot open the database {url}: ", "Connection refused")
    assert message.count("\n") == 1 and "\t" not in message, repr(message)
    assert "refused. Is the server running" in message, message


def test_a_database_url_password_is_not_printed(data_dir: Path) -> None:
    url = "postgresql://meetd:hunter2@127.0.0.1:1/nothing?connect_timeout=2&password=hunter3"
    result = meetd("db", "upgrade", "--data-dir", str(data_dir), "--database-url", url)
    shown = "postgresql://meetd:***@127.0.0.1:1/nothing?connect_timeout=2&password=***"
    message = refused(result, 1, f"cannot open the database {shown}: ")
    assert "hunter" not in message


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite:////", "sqlite:///state/"])
@pytest.mark.parametrize("variable", [False, True], ids=["flag", "environment"])
def test_a_sqlite_url_without_a_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, variable: bool
) -> None:
    """sqlite:/// said "cannot open the database: unable to open database file", naming
    neither the URL nor where it was set."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir()
    env = {"MEETD_DATABASE_URL": url} if variable else None
    args = [] if variable else ["--database-url", url]
    result = meetd(
        "accounts", "create", "--json", "--data-dir", str(tmp_path / "d"), *args, env=env
    )
    name = "MEETD_DATABASE_URL" if variable else "--database-url"
    message = refused(result, 2, f"Error: {name} must name a file after sqlite:///", repr(url))
    error_line = message.split("Error: ")[1]
    assert error_line.endswith(f"got {url!r}\n") and error_line.count("\n") == 1


def test_a_database_the_url_cannot_open_is_named(tmp_path: Path) -> None:
    """A path SQLite cannot open (here a folder) names the URL it came from."""
    url = f"sqlite:///{tmp_path}"
    result = meetd("db", "upgrade", "--database-url", url)
    message = refused(result, 1, f"Error: cannot open the database {url}: ")
    assert message.count("\n") == 1


def test_a_message_of_several_lines_is_printed_as_one() -> None:
    assert one_line("connection refused\n\tIs the server running?\n") == (
        "connection refused. Is the server running?"
    )
    assert one_line("failed:\n  reason one\n\n  reason two.") == ("failed: reason one. reason two.")
    assert one_line("one line") == "one line"


def test_a_meetd_error_of_several_lines_is_printed_as_one(
    store: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise ConfigurationError("first line\n\tsecond line")

    monkeypatch.setattr("meetd.store.migrations.upgrade", broken)
    message = refused(meetd("db", "upgrade", *store), 1, "Error: first line. second line\n")
    assert message.count("\n") == 1


def test_a_bad_setting_is_a_usage_error(data_dir: Path) -> None:
    result = meetd("db", "upgrade", "--data-dir", str(data_dir), env={"MEETD_PORT": "abc"})
    refused(result, 2, "MEETD_PORT")
    bad_url = meetd("db", "upgrade", "--database-url", "mysql://x")
    refused(bad_url, 2, "sqlite:///", "postgresql://")


# -- where the state lives ---------------------------------------------------------------------
def test_data_dir_flag_holds_the_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "flagged"
    created = one_json_object(meetd("accounts", "create", "--json", "--data-dir", str(data_dir)))
    assert (data_dir / "meetd.sqlite3").is_file()
    assert not (tmp_path / "home").exists()  # the default data dir was never touched
    # Every command acts on that same state.
    result = meetd(
        "applications", "create", "--account", created["api_key"], "--json",
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert one_json_object(result)["account_id"] == created["account_id"]


def test_the_data_dir_is_made_private(tmp_path: Path) -> None:
    """It holds the signature secrets (in the database) and the secret key."""
    data_dir = tmp_path / "new" / "data"
    one_json_object(meetd("accounts", "create", "--json", "--data-dir", str(data_dir)))
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_meetd_data_dir_environment_variable(tmp_path: Path) -> None:
    env = {"MEETD_DATA_DIR": str(tmp_path / "from-env")}
    created = one_json_object(meetd("accounts", "create", "--json", env=env))
    assert (tmp_path / "from-env" / "meetd.sqlite3").is_file()
    result = meetd("applications", "create", "--account", created["api_key"], "--json", env=env)
    assert one_json_object(result)["account_id"] == created["account_id"]
    # Without it, the account is not there: the state really lives in that directory.
    elsewhere = meetd(
        "applications", "create", "--account", created["api_key"],
        "--data-dir", str(tmp_path / "other"),
    )  # fmt: skip
    refused(elsewhere, 1, "no account")


def test_the_flag_beats_the_environment(tmp_path: Path) -> None:
    env = {"MEETD_DATA_DIR": str(tmp_path / "env")}
    one_json_object(
        meetd("accounts", "create", "--json", "--data-dir", str(tmp_path / "f"), env=env)
    )
    assert (tmp_path / "f" / "meetd.sqlite3").is_file()
    assert not (tmp_path / "env" / "meetd.sqlite3").exists()


def test_default_data_dir_is_under_home(tmp_path: Path) -> None:
    one_json_object(meetd("accounts", "create", "--json"))
    assert (tmp_path / "home" / ".local" / "share" / "meetd" / "meetd.sqlite3").is_file()


def test_database_url_flag_puts_the_database_elsewhere(tmp_path: Path) -> None:
    data_dir, database = tmp_path / "data", tmp_path / "db" / "x.sqlite3"
    database.parent.mkdir()
    store = ["--data-dir", str(data_dir), "--database-url", f"sqlite:///{database}"]
    created = one_json_object(meetd("accounts", "create", "--json", *store))
    assert database.is_file()
    assert not (data_dir / "meetd.sqlite3").exists()
    result = meetd("applications", "create", "--account", created["api_key"], "--json", *store)
    assert one_json_object(result)["account_id"] == created["account_id"]
    env = {"MEETD_DATABASE_URL": f"sqlite:///{database}"}
    assert one_json_object(meetd("db", "upgrade", "--json", env=env))["applied"] == []


def test_a_real_process_honours_the_environment(tmp_path: Path) -> None:
    env = clean_environment({"MEETD_DATA_DIR": str(tmp_path / "proc"), "HOME": str(tmp_path)})
    done = subprocess.run(
        [*meetd_command(), "accounts", "create", "--json"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == ACCOUNT_KEYS
    assert (tmp_path / "proc" / "meetd.sqlite3").is_file()
    duplicate = subprocess.run(
        [*meetd_command(), "accounts", "create", "--api-key", "same", "--api-secret", "s"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert duplicate.returncode == 0, duplicate.stderr
    again = subprocess.run(
        [*meetd_command(), "accounts", "create", "--api-key", "same", "--api-secret", "s"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr == "Error: an account with API key same already exists\n"


def test_a_relative_sqlite_url_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir()
    result = meetd("db", "upgrade", "--json", "--database-url", "sqlite:///state/x.sqlite3")
    one_json_object(result)
    assert (tmp_path / "state" / "x.sqlite3").is_file()


@pytest.mark.parametrize("variable", [False, True], ids=["flag", "environment"])
def test_a_database_url_in_a_missing_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: bool
) -> None:
    """sqlite:///nonexistent/dir/x.db once made ./nonexistent/dir quietly and exited 0."""
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///nonexistent/dir/x.db"
    env = {"MEETD_DATABASE_URL": url} if variable else None
    args = [] if variable else ["--database-url", url]
    result = meetd("accounts", "create", "--json", *args, env=env)
    message = refused(result, 1, str(tmp_path / "nonexistent" / "dir"), "does not exist")
    assert message.count("\n") == 1
    assert not (tmp_path / "nonexistent").exists()


def test_serve_refuses_a_database_url_in_a_missing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = meetd(
        "serve", "--data-dir", str(tmp_path / "data"), "--database-url", "sqlite:///no/x.db"
    )
    refused(result, 1, str(tmp_path / "no"), "does not exist")
    assert not (tmp_path / "no").exists()
