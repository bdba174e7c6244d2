"""``meetd accounts list`` and ``meetd applications list``: what a user who lost the API key
printed on first start runs to find it, and never a secret (nor a hash of one)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.cli.runner import meetd, one_json_object, refused

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ACCOUNT_FIELDS = {"account_id", "name", "api_key", "application_id", "created_at"}
APPLICATION_FIELDS = {
    "application_id",
    "account_id",
    "name",
    "is_default",
    "has_public_key",
    "rooms_callback_url",
    "sessions_callback_url",
    "recordings_callback_url",
}


def create_account(store: list[str], *more: str) -> dict[str, Any]:
    return one_json_object(meetd("accounts", "create", "--json", *more, *store))


def assert_no_secrets(result: Result, *secrets: str) -> None:
    """Nothing secret anywhere in what the command printed, on stdout or stderr."""
    assert result.exit_code == 0, result.output
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr
    assert "sha256$" not in result.output  # the stored form of an API secret


@pytest.fixture
def two_accounts(store: list[str]) -> list[dict[str, Any]]:
    first = create_account(store)
    second = create_account(
        store, "--name", "second one", "--api-key", "mykey", "--api-secret", "my-own-secret"
    )
    return [first, second]


@pytest.fixture
def extra_application(
    store: list[str], two_accounts: list[dict[str, Any]], tmp_path: Path
) -> dict[str, Any]:
    """A second application of the first account, with a key and a callback URL."""
    return one_json_object(
        meetd(
            "applications", "create", "--account", two_accounts[0]["api_key"],
            "--name", "sdk app", "--generate-private-key", str(tmp_path / "app.pem"),
            "--sessions-callback-url", "https://hooks.example.test/sessions", "--json", *store,
        )
    )  # fmt: skip


def every_secret(accounts: list[dict[str, Any]], *applications: dict[str, Any]) -> list[str]:
    return [
        *(account[key] for account in accounts for key in ("api_secret", "signature_secret")),
        *(application["signature_secret"] for application in applications),
    ]


# -- accounts list -----------------------------------------------------------------------------
def test_accounts_list_json_in_creation_order(
    store: list[str], two_accounts: list[dict[str, Any]]
) -> None:
    result = meetd("accounts", "list", "--json", *store)
    listed = one_json_object(result)["accounts"]
    assert [set(entry) for entry in listed] == [ACCOUNT_FIELDS, ACCOUNT_FIELDS]
    for entry, created in zip(listed, two_accounts, strict=True):
        for key in ("account_id", "api_key", "application_id"):
            assert entry[key] == created[key]
        assert ISO_UTC.fullmatch(entry["created_at"]), entry["created_at"]
    assert [entry["name"] for entry in listed] == ["default", "second one"]
    assert listed[0]["created_at"] <= listed[1]["created_at"]
    assert_no_secrets(result, *every_secret(two_accounts))


def test_accounts_list_text_is_one_line_an_account(
    store: list[str], two_accounts: list[dict[str, Any]]
) -> None:
    result = meetd("accounts", "list", *store)
    assert_no_secrets(result, *every_secret(two_accounts))
    header, *lines = result.stdout.splitlines()
    assert "API KEY" in header and "ACCOUNT ID" in header
    assert len(lines) == 2
    for line, created in zip(lines, two_accounts, strict=True):
        assert line.split()[:3] == [
            created["api_key"],
            created["account_id"],
            created["application_id"],
        ]
        assert ISO_UTC.fullmatch(line.split()[3])
    assert lines[1].endswith("second one")


def test_accounts_list_on_an_empty_database(store: list[str]) -> None:
    assert one_json_object(meetd("accounts", "list", "--json", *store)) == {"accounts": []}
    result = meetd("accounts", "list", *store)
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == "no accounts\n"


# -- applications list -------------------------------------------------------------------------
def test_applications_list_json_shows_every_application(
    store: list[str], two_accounts: list[dict[str, Any]], extra_application: dict[str, Any]
) -> None:
    result = meetd("applications", "list", "--json", *store)
    listed = one_json_object(result)["applications"]
    assert all(set(entry) == APPLICATION_FIELDS for entry in listed)
    first, second = two_accounts
    assert listed == [
        {
            "application_id": first["application_id"],
            "account_id": first["account_id"],
            "name": "default (default)",
            "is_default": True,
            "has_public_key": False,
            "rooms_callback_url": None,
            "sessions_callback_url": None,
            "recordings_callback_url": None,
        },
        {
            "application_id": second["application_id"],
            "account_id": second["account_id"],
            "name": "second one (default)",
            "is_default": True,
            "has_public_key": False,
            "rooms_callback_url": None,
            "sessions_callback_url": None,
            "recordings_callback_url": None,
        },
        {
            "application_id": extra_application["application_id"],
            "account_id": first["account_id"],
            "name": "sdk app",
            "is_default": False,
            "has_public_key": True,
            "rooms_callback_url": None,
            "sessions_callback_url": "https://hooks.example.test/sessions",
            "recordings_callback_url": None,
        },
    ]
    assert_no_secrets(result, *every_secret(two_accounts, extra_application))
    assert "PRIVATE KEY" not in result.output and "PUBLIC KEY-----" not in result.output


@pytest.mark.parametrize("by", ["api_key", "account_id"])
def test_applications_list_of_one_account(
    store: list[str],
    two_accounts: list[dict[str, Any]],
    extra_application: dict[str, Any],
    by: str,
) -> None:
    first, second = two_accounts
    for account, expected in (
        (first, [first["application_id"], extra_application["application_id"]]),
        (second, [second["application_id"]]),
    ):
        result = meetd("applications", "list", "--account", account[by], "--json", *store)
        listed = one_json_object(result)["applications"]
        assert [entry["application_id"] for entry in listed] == expected
        assert {entry["account_id"] for entry in listed} == {account["account_id"]}
        assert_no_secrets(result, *every_secret(two_accounts, extra_application))


def test_applications_list_text(
    store: list[str], two_accounts: list[dict[str, Any]], extra_application: dict[str, Any]
) -> None:
    first = two_accounts[0]
    result = meetd("applications", "list", "--account", first["api_key"], *store)
    assert_no_secrets(result, *every_secret(two_accounts, extra_application))
    assert result.stdout.splitlines()[1:] == [
        f"{first['application_id']}  {first['account_id']}  yes      no          default (default)",
        f"{extra_application['application_id']}  {first['account_id']}  no       yes         "
        "sdk app",
        "  sessions_callback_url: https://hooks.example.test/sessions",
    ]
    assert result.stdout.splitlines()[0].split("  ")[0] == "APPLICATION ID"


def test_applications_list_for_an_unknown_account(
    store: list[str], two_accounts: list[dict[str, Any]]
) -> None:
    for more in ([], ["--json"]):
        result = meetd("applications", "list", "--account", "nosuchkey", *more, *store)
        assert refused(result, 1, "no account", "nosuchkey").count("\n") == 1


def test_applications_list_on_an_empty_database(store: list[str]) -> None:
    assert one_json_object(meetd("applications", "list", "--json", *store)) == {"applications": []}
    result = meetd("applications", "list", *store)
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == "no applications\n"
