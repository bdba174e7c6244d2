"""What ``meetd serve`` checks before it touches the database or prints anything.

uvicorn loads the TLS files and binds the port only once it starts, after meetd has migrated
the database and shown the first account's secret: a wrong key file or a busy port then ended
in a traceback or a log line, with "serving on" already printed. These checks fail first, with
one line naming the file or the address. The listening sockets are opened here, and uvicorn
serves on them: from the moment ``serve`` says it is ready, connections are taken (they wait
in the backlog while the app starts), where before they were refused for up to two seconds.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

from meetd.errors import ConfigurationError


def check_tls_files(certfile: Path, keyfile: Path) -> None:
    """Load the certificate chain and its key as uvicorn will; say what is wrong if they
    cannot serve: a missing or unreadable file, files swapped, a key of another certificate."""
    certificate = _read(certfile, "certificate")
    key = _read(keyfile, "key")
    if b"-----BEGIN CERTIFICATE-----" not in certificate:
        raise ConfigurationError(
            f"the TLS certificate file {certfile} holds no PEM certificate"
            + (_SWAPPED if b"PRIVATE KEY-----" in certificate else "")
        )
    if b"PRIVATE KEY-----" not in key:
        raise ConfigurationError(
            f"the TLS key file {keyfile} holds no PEM private key"
            + (_SWAPPED if b"-----BEGIN CERTIFICATE-----" in key else "")
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile, password=lambda: _refuse_encrypted_key(keyfile))
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise ConfigurationError(
                f"the TLS key {keyfile} is not the key of the certificate {certfile}"
            ) from None
        raise ConfigurationError(
            f"cannot use the TLS certificate {certfile} with the key {keyfile}: {error}"
        ) from None


_SWAPPED = " (are --tls-certfile and --tls-keyfile swapped?)"


def _read(path: Path, kind: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigurationError(
            f"cannot read the TLS {kind} file {path}: {error.strerror or error}"
        ) from None


def _refuse_encrypted_key(keyfile: Path) -> str:
    # OpenSSL would otherwise ask for the passphrase on the terminal, and uvicorn again.
    raise ConfigurationError(f"the TLS key file {keyfile} is encrypted; meetd needs it unencrypted")


# uvicorn's own backlog, which it would have used had it bound the port itself.
BACKLOG = 2048


def listen_on(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to, as asyncio's server would
    open them (``localhost``: 127.0.0.1 and ::1); a one-line error naming the address when
    one cannot be had."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ConfigurationError(f"cannot listen on {host}: {error.strerror}") from None
    listeners: list[socket.socket] = []
    with closed_on_failure(listeners):
        for family, kind, protocol, _, address in dict.fromkeys(addresses):
            listener = socket.socket(family, kind, protocol)
            listeners.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                listener.bind(address)
            except OSError as error:
                shown = f"[{host}]" if ":" in host else host
                raise ConfigurationError(
                    f"cannot listen on {shown}:{port}: {error.strerror or error}"
                    + (" (is another server running there?)" if _in_use(error) else "")
                ) from None
            listener.listen(BACKLOG)
            listener.set_inheritable(True)  # --workers hands them to its processes
    return listeners


@contextlib.contextmanager
def closed_on_failure(listeners: list[socket.socket]) -> Iterator[None]:
    """Close the listening sockets when the block raises: serve stops before serving on
    them (in-process callers, tests among them, would otherwise leak them)."""
    try:
        yield
    except BaseException:
        for listener in listeners:
            listener.close()
        raise


def _in_use(error: OSError) -> bool:
    return error.errno == errno.EADDRINUSE
