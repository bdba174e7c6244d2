"""``meetd dial-in-numbers add / remove / list`` (operations contract, "The command line"):
what they print, how they fail, and that ``GET /dial-in-numbers`` then shows their list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import support
from tests.cli.runner import api_client, meetd, one_json_object, refused

ARGENTINA = {"number": "541139862166", "locale": "es-AR", "display_name": "Argentina"}
UK = {"number": "442381924626", "locale": "en-GB", "display_name": "United Kingdom"}


def add(store: list[str], number: str, locale: str, name: str, *more: str) -> Any:
    return meetd(
        "dial-in-numbers", "add", number, "--locale", locale, "--display-name", name, *more, *store
    )


def listed(store: list[str]) -> list[dict[str, str]]:
    numbers: list[dict[str, str]] = one_json_object(
        meetd("dial-in-numbers", "list", "--json", *store)
    )["dial_in_numbers"]
    return numbers


def test_added_numbers_are_what_the_api_lists(
    store: list[str], data_dir: Path, database_url: str
) -> None:
    assert one_json_object(add(store, "+54 11 3986-2166", "es-ar", "Argentina", "--json")) == (
        ARGENTINA
    )
    assert one_json_object(add(store, "442381924626", "en-GB", "United Kingdom", "--json")) == UK
    assert listed(store) == [ARGENTINA, UK]

    account = one_json_object(meetd("accounts", "create", "--json", *store))
    with api_client(data_dir, database_url) as client:
        headers = support.basic_header(account["api_key"], account["api_secret"])
        for prefix in ("/v1", "/beta"):
            response = client.get(f"{prefix}/meetings/dial-in-numbers", headers=headers)
            assert response.status_code == 200, response.text
            assert response.json() == [ARGENTINA, UK]


def test_list_keeps_the_order_they_were_added(store: list[str]) -> None:
    for number in ("33987654321", "12025550123", "4930123456"):
        assert add(store, number, "fr-FR", f"n{number}").exit_code == 0
    assert [entry["number"] for entry in listed(store)] == [
        "33987654321",
        "12025550123",
        "4930123456",
    ]


def test_an_empty_list(store: list[str]) -> None:
    assert one_json_object(meetd("dial-in-numbers", "list", "--json", *store)) == {
        "dial_in_numbers": []
    }
    text = meetd("dial-in-numbers", "list", *store)
    assert text.exit_code == 0
    assert text.stdout == ""
    assert "no dial-in numbers" in text.stderr


def test_text_output(store: list[str]) -> None:
    added = add(store, "+44 23 8192 4626", "en-GB", "United Kingdom")
    assert added.exit_code == 0, added.output
    assert added.stdout == "dial-in number 442381924626 added (en-GB, United Kingdom)\n"
    text = meetd("dial-in-numbers", "list", *store)
    assert text.exit_code == 0
    assert text.stdout.split() == ["442381924626", "en-GB", "United", "Kingdom"]
    removed = meetd("dial-in-numbers", "remove", "442381924626", *store)
    assert removed.stdout == "dial-in number 442381924626 removed\n"


def test_remove_however_the_number_is_written(store: list[str]) -> None:
    one_json_object(add(store, "541139862166", "es-AR", "Argentina", "--json"))
    one_json_object(add(store, "442381924626", "en-GB", "United Kingdom", "--json"))
    removed = meetd("dial-in-numbers", "remove", "+54 11-3986-2166", "--json", *store)
    assert one_json_object(removed) == ARGENTINA
    assert listed(store) == [UK]
    again = meetd("dial-in-numbers", "remove", "541139862166", "--json", *store)
    message = refused(again, 1, "no dial-in number 541139862166")
    assert message.startswith("Error: ") and message.count("\n") == 1
    assert listed(store) == [UK]


def test_adding_a_number_twice_fails(store: list[str]) -> None:
    one_json_object(add(store, "541139862166", "es-AR", "Argentina", "--json"))
    again = add(store, "+54 11 3986 2166", "es-AR", "Argentina again", "--json")
    message = refused(again, 1, "541139862166", "already exists")
    assert message.count("\n") == 1
    assert listed(store) == [ARGENTINA]


@pytest.mark.parametrize(
    ("number", "locale", "name", "phrase"),
    [
        ("not-a-number", "en-GB", "UK", "not a phone number"),
        ("44 (0) 1234", "en-GB", "UK", "not a phone number"),
        ("123", "en-GB", "UK", "has 3 digits"),
        ("1234567890123456", "en-GB", "UK", "has 16 digits"),
        ("02079460000", "en-GB", "UK", "starts with 0"),
        ("442381924626", "en_GB", "UK", "not a BCP 47 language tag"),
        ("442381924626", "English", "UK", "not a BCP 47 language tag"),
        ("442381924626", "en-GB", "", "1 to 100 characters"),
        ("442381924626", "en-GB", "x" * 101, "1 to 100 characters"),
    ],
)
def test_bad_values_fail_in_one_line_and_add_nothing(
    store: list[str], number: str, locale: str, name: str, phrase: str
) -> None:
    message = refused(add(store, number, locale, name, "--json"), 1, phrase)
    assert message.startswith("Error: ") and message.count("\n") == 1
    assert listed(store) == []


def test_remove_refuses_a_bad_number(store: list[str]) -> None:
    refused(meetd("dial-in-numbers", "remove", "abc", *store), 1, "not a phone number")


@pytest.mark.parametrize("missing", ["--locale", "--display-name"])
def test_locale_and_display_name_are_required(store: list[str], missing: str) -> None:
    given = {"--locale": "en-GB", "--display-name": "UK"}
    del given[missing]
    options = [item for pair in given.items() for item in pair]
    result = meetd("dial-in-numbers", "add", "442381924626", *options, *store)
    refused(result, 2, missing)


def test_each_command_acts_on_the_given_store(store: list[str], tmp_path: Path) -> None:
    one_json_object(add(store, "541139862166", "es-AR", "Argentina", "--json"))
    elsewhere = ["--data-dir", str(tmp_path / "elsewhere")]
    assert listed(elsewhere) == []
    refused(meetd("dial-in-numbers", "remove", "541139862166", *elsewhere), 1, "no dial-in")
    assert listed(store) == [ARGENTINA]
