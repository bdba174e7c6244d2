"""``meetd serve`` once its options are Settings: check, prepare the database, run uvicorn.

The order is the point. Whatever can stop the server (a TLS file, the address, the data dir,
the database) fails first, with one line and nothing created or printed. From the moment the
database is open, stderr carries log records only (JSON lines, or text on a terminal) and
stdout only the first account's credentials, or ``--json``'s one object (docs/running.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import logging.config
import os
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

import click

from meetd import __version__
from meetd.logs import logging_config
from meetd.settings import HANDOFF_VARIABLE, Settings, settings_to_handoff
from meetd.store.database import Database

log = logging.getLogger("meetd.serve")

STARTUP_FAILURE = 3  # uvicorn's exit status when the app's startup fails


def check(settings: Settings) -> tuple[Settings, list[socket.socket]]:
    """Refuse TLS files that cannot serve; listen on the address; load or make the secret key
    (and with it the data dir). The settings with the secret key in them, and the listening
    sockets for :func:`run`."""
    from meetd.preflight import check_tls_files, closed_on_failure, listen_on
    from meetd.secret_key import load_or_create_secret_key

    if settings.tls_certfile and settings.tls_keyfile:
        check_tls_files(settings.tls_certfile, settings.tls_keyfile)
    listeners = listen_on(settings.host, settings.port)
    with closed_on_failure(listeners):
        secret = load_or_create_secret_key(settings.data_dir, settings.secret_key)
    return dataclasses.replace(settings, secret_key=secret), listeners


def prepare(database: Database, settings: Settings, *, announce: bool) -> dict[str, str] | None:
    """Start logging, migrate, and on an empty database create the first account and (with
    ``announce``) show its secrets once on stdout. Its credentials, or None."""
    from meetd.credentials import create_first_account
    from meetd.store import migrations

    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))
    applied = database.write_blocking(migrations.upgrade)
    if applied:
        log.info("database migrated to version %s", applied[-1], extra={"version": applied[-1]})
    first = create_first_account(database)
    if first is None:
        return None
    # The log says that it happened; only stdout shows the secrets.
    log.info(
        "first account created",
        extra={"account_id": first["account_id"], "application_id": first["application_id"]},
    )
    if announce:
        click.echo(
            "\nCreated the first account. Its secret is shown only this once:\n"
            f"  API key:          {first['api_key']}\n"
            f"  API secret:       {first['api_secret']}\n"
            f"  Application ID:   {first['application_id']}\n"
            f"  Signature secret: {first['signature_secret']}\n"
            "Use the key and secret as HTTP Basic credentials (key:secret) on the API; the\n"
            "signature secret verifies the callbacks meetd sends (docs/callbacks.md).\n"
        )
    return first


def run(
    settings: Settings,
    listeners: list[socket.socket],
    *,
    access_log: bool,
    loop: str,
    http: str,
) -> None:
    """Serve on the listening sockets until stopped: one process, or ``settings.workers``
    processes sharing them."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from meetd.paired_writes import paired_protocol

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "log_config": logging_config(settings.log_level, settings.log_format),
        "access_log": access_log,
        "loop": loop,
        "http": paired_protocol(http),
        "ssl_certfile": str(settings.tls_certfile) if settings.tls_certfile else None,
        "ssl_keyfile": str(settings.tls_keyfile) if settings.tls_keyfile else None,
        "server_header": False,
        # An idle TLS keep-alive client would otherwise hold a SIGTERM for 30 s.
        "timeout_graceful_shutdown": 3,
        "proxy_headers": False,
    }
    announce_addresses(settings)
    if settings.workers > 1:
        os.environ[HANDOFF_VARIABLE] = settings_to_handoff(settings)
        config = uvicorn.Config("meetd.server:worker_app", factory=True, **options)
        Multiprocess(config, sockets=listeners).run()
        return
    from meetd.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, freeze_heap=True, warm_codes=True), **options)
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=listeners)
    if not server.started:  # the app's startup failed; uvicorn logged why
        sys.exit(STARTUP_FAILURE)


def worker_app() -> Any:
    """The app of one ``serve --workers N`` process, from the parent's Settings."""
    from meetd.app import create_app
    from meetd.settings import settings_from_handoff

    return create_app(settings_from_handoff(), freeze_heap=True, warm_codes=True)


def announce_addresses(settings: Settings) -> None:
    """Log where meetd listens and, when links use another address, that one too; warn when
    the links would name an address clients cannot reach (0.0.0.0 or ::)."""
    listening, url = settings.listen_url, settings.public_url
    extra = {"url": url, "listening": listening}
    if url == listening:
        log.info("meetd %s serving on %s (Ctrl-C to stop)", __version__, url, extra=extra)
    else:
        log.info(
            "meetd %s serving on %s, links use %s (Ctrl-C to stop)",
            __version__,
            listening,
            url,
            extra=extra,
        )
    if urlsplit(url).hostname in ("0.0.0.0", "::"):
        log.warning(
            "room links will use %s, an address clients cannot reach; set --public-url "
            "(MEETD_PUBLIC_URL) to the address they use, e.g. http://meet.example.com:%s",
            url,
            settings.port,
            extra={"url": url},
        )
