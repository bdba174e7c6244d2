"""``meetd serve`` refuses what cannot work before it migrates, creates or prints anything.

In-process: every one of these ends before uvicorn would start.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.cli.runner import meetd, refused
from tests.support import free_port


@pytest.fixture(autouse=True)
def never_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that lets serve through fails the test instead of serving until killed."""

    def run(*args: Any, **kwargs: Any) -> None:
        pytest.fail("meetd serve got as far as starting uvicorn")

    monkeypatch.setattr("meetd.server.run", run)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


@pytest.fixture
def swapped_tls(tmp_path: Path) -> list[str]:
    certificate = trustme.CA().issue_cert("localhost")
    certificate.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    certificate.private_key_pem.write_to_path(tmp_path / "key.pem")
    return [
        "--tls-certfile",
        str(tmp_path / "key.pem"),
        "--tls-keyfile",
        str(tmp_path / "cert.pem"),
    ]


def test_swapped_tls_files_stop_serve_before_anything(
    tmp_path: Path, swapped_tls: list[str]
) -> None:
    data_dir = tmp_path / "data"
    result = meetd("serve", "--data-dir", str(data_dir), *swapped_tls)
    message = refused(result, 1, "key.pem", "holds no PEM certificate", "swapped")
    assert message.startswith("Error: ") and message.count("\n") == 1
    assert not data_dir.exists()  # no secret key, no database, no first account


def test_a_missing_tls_file_stops_serve(tmp_path: Path, swapped_tls: list[str]) -> None:
    result = meetd(
        "serve", "--data-dir", str(tmp_path / "data"),
        "--tls-certfile", str(tmp_path / "cert.pem"), "--tls-keyfile", str(tmp_path / "no.pem"),
    )  # fmt: skip
    refused(result, 1, "no.pem", "No such file")
    assert not (tmp_path / "data").exists()


def test_a_busy_port_stops_serve_before_anything(tmp_path: Path, busy_port: int) -> None:
    data_dir = tmp_path / "data"
    result = meetd("serve", "--data-dir", str(data_dir), "--port", str(busy_port), "--json")
    refused(result, 1, f"127.0.0.1:{busy_port}", "in use")
    assert not data_dir.exists()


@pytest.mark.parametrize("variable", [False, True], ids=["flag", "environment"])
def test_port_zero_stops_serve_before_anything(tmp_path: Path, variable: bool) -> None:
    """uvicorn bound a port of the system's choosing, and every room link and the "serving
    on" line named port 0."""
    data_dir = tmp_path / "data"
    env = {"MEETD_PORT": "0"} if variable else None
    args = [] if variable else ["--port", "0"]
    result = meetd("serve", "--data-dir", str(data_dir), *args, env=env)
    name = "MEETD_PORT" if variable else "--port"
    refused(result, 2, f"Error: {name} must be between 1 and 65535, got 0\n")
    assert not data_dir.exists()


def test_a_data_dir_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    port = str(free_port())
    result = meetd("serve", "--port", port, env={"MEETD_DATA_DIR": str(tmp_path / "file")})
    refused(result, 1, f"data dir {tmp_path / 'file'} is a file")


def test_a_data_dir_under_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    data_dir = tmp_path / "file" / "data"
    result = meetd("serve", "--port", str(free_port()), "--data-dir", str(data_dir))
    refused(result, 1, f"cannot create the data dir {data_dir}", "Not a directory")


def test_an_unreadable_secret_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "data" / "secret_key").mkdir(parents=True)
    result = meetd("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"))
    refused(result, 1, f"cannot read the secret key {tmp_path / 'data' / 'secret_key'}")


@pytest.mark.parametrize("variable", [False, True], ids=["flag", "environment"])
def test_a_public_url_with_credentials_stops_serve_without_printing_them(
    tmp_path: Path, variable: bool
) -> None:
    url = "https://meetd:hunter2@meet.example.com"
    env = {"MEETD_PUBLIC_URL": url} if variable else None
    args = [] if variable else ["--public-url", url]
    result = meetd("serve", "--data-dir", str(tmp_path / "data"), *args, env=env)
    name = "MEETD_PUBLIC_URL" if variable else "--public-url"
    message = refused(result, 2, f"Error: {name} must not hold a user name or password")
    assert "hunter2" not in message and "meetd:" not in message
    assert not (tmp_path / "data").exists()


def test_a_lone_tls_variable_is_named_as_the_variable(tmp_path: Path) -> None:
    """It said "--tls-certfile and --tls-keyfile go together" to someone who set neither."""
    env = {"MEETD_TLS_CERTFILE": str(tmp_path / "cert.pem")}
    result = meetd("serve", "--data-dir", str(tmp_path / "data"), env=env)
    message = refused(result, 2, "Error: MEETD_TLS_CERTFILE needs MEETD_TLS_KEYFILE too")
    assert "--tls" not in message
