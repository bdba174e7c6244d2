"""One frozen Settings object, built once: flags > MEETD_* environment > defaults.

Nothing else in meetd reads ``os.environ``; every part gets its configuration from here.
"""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meetd.errors import ConfigurationError
from meetd.secret_key import MIN_LENGTH as SECRET_KEY_MIN_LENGTH

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")
DEFAULT_RETRY_SCHEDULE = (1, 5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200)
# The most the two room durations may be: 10 years. Far more would overflow the 64-bit
# millisecond timestamps the database keeps (every instant create answered 500).
MAX_ROOM_SECONDS = 10 * 365 * 24 * 3600


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    secret_key: str | None = None
    redis_url: str | None = None
    instant_room_ttl_seconds: int = 600
    long_term_min_lead_seconds: int = 600
    callback_retry_schedule: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    workers: int = 1
    log_level: str = "info"
    log_format: str = "json"
    themes_per_application: int = 50
    # Refuse callback URLs that reach loopback or private addresses (shared servers).
    callback_block_private_addresses: bool = False
    # Unset bucket: uploads and recordings are files under the data dir.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    @property
    def listen_url(self) -> str:
        """The address ``serve`` binds, as a URL (``http://[::1]:8080`` for IPv6)."""
        scheme = "https" if self.tls_certfile else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file when the database URL names one, else None."""
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return None


# flag name -> (environment variable, parser)
_ENV: dict[str, tuple[str, Any]] = {
    "data_dir": ("MEETD_DATA_DIR", Path),
    "database_url": ("MEETD_DATABASE_URL", str),
    "host": ("MEETD_HOST", str),
    "port": ("MEETD_PORT", int),
    "public_url": ("MEETD_PUBLIC_URL", str),
    "secret_key": ("MEETD_SECRET_KEY", str),
    "redis_url": ("MEETD_REDIS_URL", str),
    "instant_room_ttl_seconds": ("MEETD_INSTANT_ROOM_TTL_SECONDS", int),
    "long_term_min_lead_seconds": ("MEETD_LONG_TERM_MIN_LEAD_SECONDS", int),
    "callback_retry_schedule": ("MEETD_CALLBACK_RETRY_SCHEDULE", None),
    "tls_certfile": ("MEETD_TLS_CERTFILE", Path),
    "tls_keyfile": ("MEETD_TLS_KEYFILE", Path),
    "workers": ("MEETD_WORKERS", int),
    "log_level": ("MEETD_LOG_LEVEL", str),
    "log_format": ("MEETD_LOG_FORMAT", str),
    "themes_per_application": ("MEETD_THEMES_PER_APPLICATION", int),
    "callback_block_private_addresses": ("MEETD_CALLBACK_BLOCK_PRIVATE_ADDRESSES", None),
    "s3_bucket": ("MEETD_S3_BUCKET", str),
    "s3_endpoint_url": ("MEETD_S3_ENDPOINT_URL", str),
    "s3_region": ("MEETD_S3_REGION", str),
    "s3_access_key_id": ("MEETD_S3_ACCESS_KEY_ID", str),
    "s3_secret_access_key": ("MEETD_S3_SECRET_ACCESS_KEY", str),
}

ENVIRONMENT_VARIABLES = tuple(env for env, _ in _ENV.values())


def parse_retry_schedule(text: str) -> tuple[int, ...]:
    """``"1,5,30"`` -> ``(1, 5, 30)``: seconds to wait before each further attempt."""
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigurationError(
            f"MEETD_CALLBACK_RETRY_SCHEDULE must be comma-separated seconds, got {text!r}"
        ) from None
    if not steps:
        raise ConfigurationError(
            f"MEETD_CALLBACK_RETRY_SCHEDULE needs at least one step, got {text!r}"
        )
    negative = [step for step in steps if step < 0]
    if negative:
        raise ConfigurationError(
            "MEETD_CALLBACK_RETRY_SCHEDULE steps must be 0 or more seconds, got "
            f"{', '.join(map(str, negative))} in {text!r}"
        )
    return steps


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_flag(text: str, variable: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in _TRUE + _FALSE:
        raise ConfigurationError(f"{variable} must be true or false, got {text!r}")
    return lowered in _TRUE


def build_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    logs_to_terminal: bool = False,
) -> Settings:
    """Build the Settings: a flag that is not None wins over its MEETD_* variable.

    ``logs_to_terminal``: standard error is a terminal, so a person reads the logs there; the
    log format then defaults to text, not JSON (a flag or MEETD_LOG_FORMAT still wins)."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (env, parse) in _ENV.items():
        if name in flags:
            values[name] = flags[name]
        elif environ.get(env, "") != "":
            raw = environ[env]
            try:
                if name == "callback_retry_schedule":
                    values[name] = parse_retry_schedule(raw)
                elif name == "callback_block_private_addresses":
                    values[name] = parse_flag(raw, env)
                else:
                    values[name] = parse(raw)
            except ValueError:
                raise ConfigurationError(f"{env} has an invalid value: {raw!r}") from None
    if logs_to_terminal:
        values.setdefault("log_format", "text")
    if isinstance(values.get("callback_retry_schedule"), str):
        values["callback_retry_schedule"] = parse_retry_schedule(values["callback_retry_schedule"])

    home = Path(environ.get("HOME") or Path.home())
    data_dir = Path(values.pop("data_dir", home / ".local" / "share" / "meetd"))
    data_dir = data_dir.expanduser().resolve()
    database_url = values.pop("database_url", None) or f"sqlite:///{data_dir / 'meetd.sqlite3'}"
    settings = Settings(data_dir=data_dir, database_url=database_url, **values)
    named = _Names(frozenset(flags))
    if settings.public_url:
        public_url = _check_public_url(settings.public_url, named("public_url"))
        settings = dataclasses.replace(settings, public_url=public_url.rstrip("/"))
    else:
        settings = dataclasses.replace(settings, public_url=settings.listen_url)
    _check(settings, named)
    return settings


# The user info of a URL: what comes between "scheme://" and the last "@" before the path.
_USER_INFO = re.compile(r"^(\s*[A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def _check_public_url(url: str, name: str) -> str:
    """A base URL the rooms' links can be built on: http(s), a host, a port a server can
    listen on, and nothing before the host or after the path (user info would hand the
    credentials out in every link; a query or fragment would land in the middle of every
    link). The URL with its scheme in lower case (``HTTPS://`` is the same URL)."""
    shown = _USER_INFO.sub(r"\1***@", url)  # messages do not print credentials again
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as error:
        raise ConfigurationError(f"{name} is not a URL ({error}): {shown!r}") from None
    if parts.scheme not in ("http", "https") or url[: len(parts.scheme) + 3].lower() != (
        parts.scheme + "://"
    ):
        problem = "must start with http:// or https://"
    elif "@" in parts.netloc:
        problem = (
            "must not hold a user name or password (user:password@…): every link would give "
            "them out"
        )
    elif not parts.hostname:
        problem = "must name a host, as in https://meet.example.com"
    elif any(c.isspace() for c in url):
        problem = "must not contain spaces"
    elif port == 0:
        problem = "must not have port 0, where no server listens"
    elif parts.query or "?" in url:
        problem = "must not have a query (?…)"
    elif parts.fragment or "#" in url:
        problem = "must not have a fragment (#…)"
    else:
        return parts.scheme + url[len(parts.scheme) :]
    raise ConfigurationError(f"{name} {problem}, got {shown!r}")


_DATABASE_PASSWORD = re.compile(r"(://[^:/?#@]*:)[^/?#@]*@|((?:^|[?&])password=)[^&]*")


def shown_database_url(url: str) -> str:
    """The database URL for a message, its password (``user:pw@`` or ``password=``) hidden."""
    return _DATABASE_PASSWORD.sub(
        lambda m: f"{m[1]}***@" if m[1] is not None else f"{m[2]}***", url
    )


# The settings `meetd` commands take as flags: a message about one names the flag when the
# value came from it, and the variable otherwise.
_FLAGS = frozenset(
    {"data_dir", "database_url", "host", "port", "public_url", "workers", "log_level"}
    | {"log_format", "tls_certfile", "tls_keyfile"}
)


@dataclasses.dataclass(frozen=True)
class _Names:
    flags_given: frozenset[str]

    def __call__(self, name: str) -> str:
        """``--port`` for a value given as a flag, else ``MEETD_PORT``."""
        if self.is_flag(name):
            return "--" + name.replace("_", "-")
        return _ENV[name][0]

    def is_flag(self, name: str) -> bool:
        return name in self.flags_given and name in _FLAGS


def _check(settings: Settings, named: _Names) -> None:
    if not settings.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigurationError(
            f"{named('database_url')} must start with sqlite:/// or postgresql://, "
            f"got {settings.database_url!r}"
        )
    if settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("/"):
        # No file (sqlite:/// alone, or a folder): SQLite could only answer "unable to open
        # database file", naming neither the URL nor the setting.
        raise ConfigurationError(
            f"{named('database_url')} must name a file after sqlite:///, as in "
            f"sqlite:///relative/to/cwd.db or sqlite:////absolute/path.db, "
            f"got {settings.database_url!r}"
        )
    if settings.secret_key is not None and len(settings.secret_key) < SECRET_KEY_MIN_LENGTH:
        raise ConfigurationError(
            f"MEETD_SECRET_KEY must have at least {SECRET_KEY_MIN_LENGTH} characters, "
            f"got {len(settings.secret_key)}"
        )
    if not 1 <= settings.instant_room_ttl_seconds <= MAX_ROOM_SECONDS:
        raise ConfigurationError(
            f"MEETD_INSTANT_ROOM_TTL_SECONDS must be between 1 and {MAX_ROOM_SECONDS} "
            f"(10 years), got {settings.instant_room_ttl_seconds}"
        )
    if not 0 <= settings.long_term_min_lead_seconds <= MAX_ROOM_SECONDS:
        raise ConfigurationError(
            f"MEETD_LONG_TERM_MIN_LEAD_SECONDS must be between 0 and {MAX_ROOM_SECONDS} "
            f"(10 years), got {settings.long_term_min_lead_seconds}"
        )
    if bool(settings.tls_certfile) != bool(settings.tls_keyfile):
        given, missing = ("tls_certfile", "tls_keyfile")
        if settings.tls_keyfile:
            given, missing = missing, given
        # Ask for the other one the way the user gave this one: as a flag, or a variable.
        wanted = "--" + missing.replace("_", "-") if named.is_flag(given) else _ENV[missing][0]
        raise ConfigurationError(
            f"{named(given)} needs {wanted} too: HTTPS takes a certificate and its key"
        )
    # Not 0 either: uvicorn would bind a port of the system's choosing, and every link and the
    # "serving on" line would name port 0.
    if not 1 <= settings.port <= 65535:
        raise ConfigurationError(
            f"{named('port')} must be between 1 and 65535, got {settings.port}"
        )
    if settings.workers < 1:
        raise ConfigurationError(f"{named('workers')} must be 1 or more, got {settings.workers}")
    if settings.log_level not in LOG_LEVELS:
        raise ConfigurationError(
            f"{named('log_level')} must be one of {', '.join(LOG_LEVELS)}, "
            f"got {settings.log_level!r}"
        )
    if settings.log_format not in LOG_FORMATS:
        raise ConfigurationError(
            f"{named('log_format')} must be json or text, got {settings.log_format!r}"
        )
    if settings.themes_per_application < 0:
        raise ConfigurationError("MEETD_THEMES_PER_APPLICATION must be 0 or more")
    s3_given = [
        settings.s3_endpoint_url,
        settings.s3_region,
        settings.s3_access_key_id,
        settings.s3_secret_access_key,
    ]
    if settings.s3_bucket is None and any(value is not None for value in s3_given):
        raise ConfigurationError("MEETD_S3_BUCKET is required when any other MEETD_S3_* is set")
    if bool(settings.s3_access_key_id) != bool(settings.s3_secret_access_key):
        raise ConfigurationError(
            "MEETD_S3_ACCESS_KEY_ID and MEETD_S3_SECRET_ACCESS_KEY go together"
        )
    if settings.s3_endpoint_url is not None and not settings.s3_endpoint_url.startswith(
        ("http://", "https://")
    ):
        raise ConfigurationError(
            "MEETD_S3_ENDPOINT_URL must start with http:// or https://, "
            f"got {settings.s3_endpoint_url!r}"
        )


# `meetd serve --workers N` starts N processes; the parent hands its Settings to them whole.
HANDOFF_VARIABLE = "MEETD_SETTINGS_HANDOFF"


def settings_to_handoff(settings: Settings) -> str:
    import json

    values = dataclasses.asdict(settings)
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in values.items()})


def settings_from_handoff(environ: Mapping[str, str] | None = None) -> Settings:
    import json

    environ = os.environ if environ is None else environ
    values = json.loads(environ[HANDOFF_VARIABLE])
    for name in ("data_dir", "tls_certfile", "tls_keyfile"):
        if values[name] is not None:
            values[name] = Path(values[name])
    values["callback_retry_schedule"] = tuple(values["callback_retry_schedule"])
    return Settings(**values)
