"""What serve logs about its addresses (the real process: tests/cli/test_serve.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from meetd.server import announce_addresses
from meetd.settings import build_settings


def announced(caplog: pytest.LogCaptureFixture, **flags: Any) -> list[logging.LogRecord]:
    with caplog.at_level(logging.INFO, logger="meetd.serve"):
        announce_addresses(build_settings(flags, environ={}))
    return [r for r in caplog.records if r.name == "meetd.serve"]


def test_one_address_when_links_use_it(caplog: pytest.LogCaptureFixture) -> None:
    [record] = announced(caplog, port=9000)
    assert record.getMessage().endswith("serving on http://127.0.0.1:9000 (Ctrl-C to stop)")
    assert record.__dict__["listening"] == record.__dict__["url"] == "http://127.0.0.1:9000"


def test_both_addresses_when_links_use_another(caplog: pytest.LogCaptureFixture) -> None:
    [record] = announced(caplog, port=9000, public_url="https://meet.example.com")
    assert "serving on http://127.0.0.1:9000, links use https://meet.example.com" in (
        record.getMessage()
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_links_on_an_unspecified_address_are_warned_of(
    caplog: pytest.LogCaptureFixture, host: str
) -> None:
    _serving, warning = announced(caplog, host=host, port=9000)
    assert warning.levelno == logging.WARNING
    assert "--public-url" in warning.getMessage() and "clients cannot reach" in warning.getMessage()


def test_no_warning_once_a_public_url_is_set(caplog: pytest.LogCaptureFixture) -> None:
    records = announced(caplog, host="0.0.0.0", public_url="https://meet.example.com")
    assert [r.levelno for r in records] == [logging.INFO]
