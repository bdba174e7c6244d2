"""serve's checks before it starts: TLS files that load together, an address it can bind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trustme

from meetd.errors import ConfigurationError
from meetd.preflight import check_tls_files, listen_on
from tests.support import free_port


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    mine, other = ca.issue_cert("localhost"), ca.issue_cert("other.test")
    mine.cert_chain_pems[0].write_to_path(folder / "cert.pem")
    mine.private_key_pem.write_to_path(folder / "key.pem")
    other.private_key_pem.write_to_path(folder / "other-key.pem")
    (folder / "junk.pem").write_text("not PEM\n")
    (folder / "broken-key.pem").write_text(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    return {path.name: path for path in folder.iterdir()}


def test_a_matching_pair_passes(pems: dict[str, Path]) -> None:
    check_tls_files(pems["cert.pem"], pems["key.pem"])


@pytest.mark.parametrize(
    ("cert", "key", "phrases"),
    [
        ("key.pem", "cert.pem", ["file", "key.pem", "holds no PEM certificate", "swapped"]),
        ("junk.pem", "key.pem", ["junk.pem", "holds no PEM certificate"]),
        ("cert.pem", "junk.pem", ["junk.pem", "holds no PEM private key"]),
        ("cert.pem", "cert.pem", ["holds no PEM private key", "swapped"]),
        ("cert.pem", "other-key.pem", ["other-key.pem", "is not the key of the certificate"]),
        ("cert.pem", "broken-key.pem", ["broken-key.pem", "cannot use the TLS certificate"]),
        ("missing.pem", "key.pem", ["missing.pem", "No such file"]),
        ("cert.pem", "missing.pem", ["TLS key file", "missing.pem", "No such file"]),
    ],
)
def test_unusable_files_are_named(
    pems: dict[str, Path], cert: str, key: str, phrases: list[str]
) -> None:
    folder = pems["cert.pem"].parent
    with pytest.raises(ConfigurationError) as caught:
        check_tls_files(folder / cert, folder / key)
    message = caught.value.message
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, message


def test_an_encrypted_key_is_refused_without_a_prompt(
    pems: dict[str, Path], tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pems["key.pem"].read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(ConfigurationError, match="encrypted"):
        check_tls_files(pems["cert.pem"], encrypted)


def test_a_free_address_is_listened_on_at_once() -> None:
    """A client may connect as soon as the sockets exist: its connection waits in the
    backlog for the server, instead of being refused while the app starts."""
    listeners = listen_on("127.0.0.1", free_port())
    try:
        assert len(listeners) == 1
        with socket.create_connection(listeners[0].getsockname()[:2], timeout=2):
            pass
        assert listeners[0].get_inheritable()  # for --workers' processes
    finally:
        for listener in listeners:
            listener.close()


def test_a_host_with_two_addresses_gets_a_socket_each() -> None:
    listeners = listen_on("localhost", free_port())
    try:
        families = sorted(listener.family for listener in listeners)
        expected = sorted({info[0] for info in socket.getaddrinfo("localhost", 80, type=1)})
        assert families == expected
    finally:
        for listener in listeners:
            listener.close()


def test_a_port_in_use_is_named() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigurationError) as caught:
            listen_on("127.0.0.1", port)
    message = caught.value.message
    assert f"127.0.0.1:{port}" in message and "in use" in message, message


def test_an_unknown_host_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"cannot listen on no-such-host\.invalid"):
        listen_on("no-such-host.invalid", 8080)


def test_an_address_not_on_this_machine_is_named() -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a local interface.
    with pytest.raises(ConfigurationError, match=r"cannot listen on 192\.0\.2\.1:8080"):
        listen_on("192.0.2.1", 8080)
