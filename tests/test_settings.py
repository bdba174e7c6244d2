"""Settings: flags > MEETD_* environment > defaults, for every variable of the operations
contract (docs: /work/shared/spec/operations.md, "Configuration"), and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meetd.errors import ConfigurationError
from meetd.settings import (
    DEFAULT_RETRY_SCHEDULE,
    ENVIRONMENT_VARIABLES,
    HANDOFF_VARIABLE,
    MAX_ROOM_SECONDS,
    Settings,
    build_settings,
    settings_from_handoff,
    settings_to_handoff,
    shown_database_url,
)

# The variables the operations contract names (MEETD_S3_* by the names meetd gives them).
CONTRACT_VARIABLES = (
    "MEETD_S3_BUCKET",
    "MEETD_S3_ENDPOINT_URL",
    "MEETD_S3_REGION",
    "MEETD_S3_ACCESS_KEY_ID",
    "MEETD_S3_SECRET_ACCESS_KEY",
    "MEETD_DATA_DIR",
    "MEETD_DATABASE_URL",
    "MEETD_PUBLIC_URL",
    "MEETD_HOST",
    "MEETD_PORT",
    "MEETD_SECRET_KEY",
    "MEETD_REDIS_URL",
    "MEETD_INSTANT_ROOM_TTL_SECONDS",
    "MEETD_LONG_TERM_MIN_LEAD_SECONDS",
    "MEETD_CALLBACK_RETRY_SCHEDULE",
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of our own, so the default data dir never names the real one."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def build(flags: dict[str, Any] | None = None, **environ: str) -> Settings:
    return build_settings(flags or {}, environ=environ)


# -- defaults ----------------------------------------------------------------------------------
def test_defaults(home: Path) -> None:
    settings = build()
    data_dir = home / ".local" / "share" / "meetd"
    assert settings.data_dir == data_dir
    assert settings.database_url == f"sqlite:///{data_dir / 'meetd.sqlite3'}"
    assert settings.sqlite_path == data_dir / "meetd.sqlite3"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.secret_key is None  # generated on first start, in the data dir
    assert settings.redis_url is None  # in-process fan-out
    assert settings.instant_room_ttl_seconds == 600
    assert settings.long_term_min_lead_seconds == 600
    assert settings.callback_retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert settings.tls_certfile is None and settings.tls_keyfile is None
    assert settings.workers == 1


def test_default_retry_schedule_is_sane() -> None:
    assert DEFAULT_RETRY_SCHEDULE
    assert all(isinstance(step, int) and step >= 0 for step in DEFAULT_RETRY_SCHEDULE)
    assert list(DEFAULT_RETRY_SCHEDULE) == sorted(DEFAULT_RETRY_SCHEDULE)


def test_build_settings_without_environ_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEETD_PORT", "9123")
    assert build_settings().port == 9123


def test_every_contract_variable_is_read() -> None:
    assert set(CONTRACT_VARIABLES) <= set(ENVIRONMENT_VARIABLES)


def test_settings_read_only_meetd_variables() -> None:
    assert all(name.startswith("MEETD_") for name in ENVIRONMENT_VARIABLES)


# -- environment over defaults, flags over environment -----------------------------------------
# (attribute, variable, environment value, parsed, flag value that must win)
CASES: list[tuple[str, str, str, Any, Any]] = [
    ("host", "MEETD_HOST", "0.0.0.0", "0.0.0.0", "::1"),
    ("port", "MEETD_PORT", "9000", 9000, 9001),
    ("public_url", "MEETD_PUBLIC_URL", "https://env.example", "https://env.example", "https://f.x"),
    ("secret_key", "MEETD_SECRET_KEY", "from-env" * 4, "from-env" * 4, "from-flag" * 4),
    ("redis_url", "MEETD_REDIS_URL", "redis://env:6379/0", "redis://env:6379/0", "redis://f/1"),
    ("instant_room_ttl_seconds", "MEETD_INSTANT_ROOM_TTL_SECONDS", "30", 30, 45),
    ("long_term_min_lead_seconds", "MEETD_LONG_TERM_MIN_LEAD_SECONDS", "0", 0, 5),
    ("callback_retry_schedule", "MEETD_CALLBACK_RETRY_SCHEDULE", "1, 2,3", (1, 2, 3), (4, 5)),
    ("workers", "MEETD_WORKERS", "3", 3, 2),
    ("log_level", "MEETD_LOG_LEVEL", "debug", "debug", "error"),
    ("log_format", "MEETD_LOG_FORMAT", "text", "text", "json"),
    ("themes_per_application", "MEETD_THEMES_PER_APPLICATION", "7", 7, 8),
    ("s3_bucket", "MEETD_S3_BUCKET", "env-bucket", "env-bucket", "flag-bucket"),
    (
        "database_url",
        "MEETD_DATABASE_URL",
        "postgresql://127.0.0.1:5432/env",
        "postgresql://127.0.0.1:5432/env",
        "sqlite:////tmp/flag.sqlite3",
    ),
]


@pytest.mark.parametrize(("attribute", "variable", "raw", "parsed", "flag"), CASES)
def test_environment_beats_default_and_flag_beats_environment(
    attribute: str, variable: str, raw: str, parsed: Any, flag: Any
) -> None:
    assert getattr(build(**{variable: raw}), attribute) == parsed
    assert getattr(build({attribute: flag}, **{variable: raw}), attribute) == flag


@pytest.mark.parametrize(("attribute", "variable", "raw", "parsed", "flag"), CASES)
def test_a_flag_of_none_means_not_given(
    attribute: str, variable: str, raw: str, parsed: Any, flag: Any
) -> None:
    """click passes None for an option left out: the environment still applies."""
    assert getattr(build({attribute: None}, **{variable: raw}), attribute) == parsed


def test_an_empty_variable_counts_as_unset() -> None:
    settings = build(MEETD_PORT="", MEETD_REDIS_URL="", MEETD_DATA_DIR="")
    assert settings.port == 8080
    assert settings.redis_url is None
    assert settings.data_dir.name == "meetd"


def test_data_dir_from_environment_and_flag(tmp_path: Path) -> None:
    from_env = build(MEETD_DATA_DIR=str(tmp_path / "env"))
    assert from_env.data_dir == tmp_path / "env"
    assert from_env.database_url == f"sqlite:///{tmp_path / 'env' / 'meetd.sqlite3'}"

    from_flag = build({"data_dir": tmp_path / "flag"}, MEETD_DATA_DIR=str(tmp_path / "env"))
    assert from_flag.data_dir == tmp_path / "flag"
    assert from_flag.database_url == f"sqlite:///{tmp_path / 'flag' / 'meetd.sqlite3'}"


def test_data_dir_is_made_absolute(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert build(MEETD_DATA_DIR="relative").data_dir == tmp_path / "relative"
    assert build(MEETD_DATA_DIR="~/meetd-data").data_dir == home / "meetd-data"


def test_an_explicit_database_url_is_not_moved_by_the_data_dir(tmp_path: Path) -> None:
    settings = build(
        {"data_dir": tmp_path / "flag"},
        MEETD_DATABASE_URL=f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}",
    )
    assert settings.database_url == f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"
    assert settings.sqlite_path == tmp_path / "elsewhere.sqlite3"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://meetd:pw@db:5432/meetd", "postgresql://meetd:***@db:5432/meetd"),
        ("postgres://:pw@db/meetd", "postgres://:***@db/meetd"),
        (
            "postgresql://db/meetd?password=pw&sslmode=require",
            "postgresql://db/meetd?password=***&sslmode=require",
        ),
        (
            "postgresql://db/meetd?sslmode=require&password=pw",
            "postgresql://db/meetd?sslmode=require&password=***",
        ),
        ("postgresql://meetd@db/meetd", "postgresql://meetd@db/meetd"),
        ("sqlite:////var/lib/meetd/a:b@c.db", "sqlite:////var/lib/meetd/a:b@c.db"),
    ],
)
def test_a_database_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert shown_database_url(url) == shown


@pytest.mark.parametrize(
    "url", ["postgresql://127.0.0.1:5432/test", "postgres://user@db/meetd?sslmode=disable"]
)
def test_postgresql_urls_are_accepted(url: str) -> None:
    settings = build(MEETD_DATABASE_URL=url)
    assert settings.database_url == url
    assert settings.sqlite_path is None


def test_public_url_defaults_to_host_and_port() -> None:
    assert build(MEETD_HOST="0.0.0.0", MEETD_PORT="9000").public_url == "http://0.0.0.0:9000"
    assert build({"port": 9001}, MEETD_PORT="9000").public_url == "http://127.0.0.1:9001"


def test_public_url_is_https_with_tls(tmp_path: Path) -> None:
    settings = build({"tls_certfile": tmp_path / "c.pem", "tls_keyfile": tmp_path / "k.pem"})
    assert settings.public_url == "https://127.0.0.1:8080"


def test_public_url_loses_its_trailing_slash() -> None:
    assert build(MEETD_PUBLIC_URL="https://meet.example.com/").public_url == (
        "https://meet.example.com"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://exa mple.com", "must not contain spaces"),
        ("https://meet.example.com/?q=1", "must not have a query"),
        ("https://meet.example.com?", "must not have a query"),
        ("https://meet.example.com/#frag", "must not have a fragment"),
        ("https://", "must name a host"),
        ("https:///path", "must name a host"),
        ("https:meet.example.com", "must start with http:// or https://"),
        ("ftp://meet.example.com", "must start with http:// or https://"),
        ("http://meet.example.com:port", "is not a URL"),
        ("http://meet.example.com:0", "must not have port 0"),
        ("https://meet.example.com:00/meetd", "must not have port 0"),
        ("http://[::1]:0", "must not have port 0"),
    ],
)
def test_a_public_url_that_would_break_links_is_refused(url: str, problem: str) -> None:
    """Each was accepted, and every host and guest link carried it."""
    for settings in ({"public_url": url}, {}):
        environ = {} if settings else {"MEETD_PUBLIC_URL": url}
        with pytest.raises(ConfigurationError) as caught:
            build(settings, **environ)
        message = caught.value.message
        assert problem in message and message.endswith(repr(url)), message  # as given


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pw@meet.example.com", "'http://***@meet.example.com'"),
        ("https://token@meet.example.com:8443/meetd", "'https://***@meet.example.com:8443/meetd'"),
        ("https://@meet.example.com", "'https://***@meet.example.com'"),
        ("HTTPS://a:b@meet.example.com", "'HTTPS://***@meet.example.com'"),
        ("http://a@b:c@meet.example.com/x@y", "'http://***@meet.example.com/x@y'"),
    ],
)
@pytest.mark.parametrize("source", ["flag", "environment"])
def test_a_public_url_with_user_info_is_refused_without_showing_it(
    url: str, shown: str, source: str
) -> None:
    """http://user:pw@host was accepted, and every host and guest link handed the
    credentials out; the message names the problem but does not print them again."""
    flags, environ = (
        ({"public_url": url}, {}) if source == "flag" else ({}, {"MEETD_PUBLIC_URL": url})
    )
    with pytest.raises(ConfigurationError) as caught:
        build(flags, **environ)
    name = "--public-url" if source == "flag" else "MEETD_PUBLIC_URL"
    assert caught.value.message == (
        f"{name} must not hold a user name or password (user:password@…): every link would "
        f"give them out, got {shown}"
    )


def test_a_public_url_that_is_no_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build({"public_url": "http://user:secret@meet.example.com:port"})
    message = caught.value.message
    assert message.startswith("--public-url is not a URL") and "secret" not in message, message
    assert message.endswith("'http://***@meet.example.com:port'"), message


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("HTTPS://Meet.Example.com/", "https://Meet.Example.com"),
        ("Http://meet.example.com:8080/Path", "http://meet.example.com:8080/Path"),
        ("hTtPs://meet.example.com", "https://meet.example.com"),
    ],
)
def test_a_public_url_scheme_in_upper_case_is_accepted_in_lower_case(url: str, kept: str) -> None:
    """Schemes are case-insensitive (RFC 3986 §3.1): HTTPS://… was refused as not starting
    with https://. It is kept with the scheme lower-cased, the rest as given."""
    assert build({"public_url": url}).public_url == kept
    assert build(MEETD_PUBLIC_URL=url).public_url == kept


def test_a_public_url_with_a_path_is_kept() -> None:
    assert build({"public_url": "https://example.com:8443/meetd/"}).public_url == (
        "https://example.com:8443/meetd"
    )


def test_the_listening_address_is_a_url_for_ipv6_too() -> None:
    assert build({"host": "::"}).listen_url == "http://[::]:8080"
    assert build({"host": "::1"}).public_url == "http://[::1]:8080"
    settings = build({"host": "0.0.0.0", "public_url": "https://meet.example.com"})
    assert settings.listen_url == "http://0.0.0.0:8080"


def test_tls_files_from_environment(tmp_path: Path) -> None:
    settings = build(
        MEETD_TLS_CERTFILE=str(tmp_path / "c.pem"), MEETD_TLS_KEYFILE=str(tmp_path / "k.pem")
    )
    assert settings.tls_certfile == tmp_path / "c.pem"
    assert settings.tls_keyfile == tmp_path / "k.pem"


def test_retry_schedule_flag_may_be_text() -> None:
    assert build({"callback_retry_schedule": "2,4"}).callback_retry_schedule == (2, 4)


def test_settings_are_frozen() -> None:
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        build().port = 1  # type: ignore[misc]


def test_handoff_to_workers_keeps_every_setting(tmp_path: Path) -> None:
    settings = build(
        {"data_dir": tmp_path, "tls_certfile": tmp_path / "c", "tls_keyfile": tmp_path / "k"},
        MEETD_CALLBACK_RETRY_SCHEDULE="1,2",
        MEETD_SECRET_KEY="s" * 32,
    )
    handed = settings_from_handoff({HANDOFF_VARIABLE: settings_to_handoff(settings)})
    assert handed == settings


# -- invalid values ----------------------------------------------------------------------------
# (variable, value): each must give a ConfigurationError naming the setting.
INVALID = [
    ("MEETD_PORT", "abc"),
    ("MEETD_PORT", "8080.5"),
    ("MEETD_PORT", "70000"),
    ("MEETD_PORT", "-1"),
    ("MEETD_PORT", "0"),
    ("MEETD_INSTANT_ROOM_TTL_SECONDS", "ten"),
    ("MEETD_INSTANT_ROOM_TTL_SECONDS", "0"),
    ("MEETD_INSTANT_ROOM_TTL_SECONDS", "-5"),
    ("MEETD_INSTANT_ROOM_TTL_SECONDS", "1.5"),
    ("MEETD_INSTANT_ROOM_TTL_SECONDS", "99999999999999999999"),
    ("MEETD_INSTANT_ROOM_TTL_SECONDS", str(MAX_ROOM_SECONDS + 1)),
    ("MEETD_LONG_TERM_MIN_LEAD_SECONDS", "99999999999999999999"),
    ("MEETD_LONG_TERM_MIN_LEAD_SECONDS", str(MAX_ROOM_SECONDS + 1)),
    ("MEETD_LONG_TERM_MIN_LEAD_SECONDS", "-1"),
    ("MEETD_LONG_TERM_MIN_LEAD_SECONDS", "soon"),
    ("MEETD_CALLBACK_RETRY_SCHEDULE", "1,x,3"),
    ("MEETD_CALLBACK_RETRY_SCHEDULE", ",,"),
    ("MEETD_CALLBACK_RETRY_SCHEDULE", "1,-5"),
    ("MEETD_DATABASE_URL", "mysql://db/meetd"),
    ("MEETD_DATABASE_URL", "meetd.sqlite3"),
    ("MEETD_DATABASE_URL", "sqlite:///"),
    ("MEETD_DATABASE_URL", "sqlite:////var/lib/meetd/"),
    ("MEETD_WORKERS", "many"),
    ("MEETD_WORKERS", "0"),
    ("MEETD_WORKERS", "-2"),
    ("MEETD_LOG_LEVEL", "verbose"),
    ("MEETD_LOG_FORMAT", "xml"),
    ("MEETD_PUBLIC_URL", "meet.example.com"),
    ("MEETD_THEMES_PER_APPLICATION", "-1"),
    ("MEETD_THEMES_PER_APPLICATION", "many"),
    ("MEETD_SECRET_KEY", "x"),
    ("MEETD_SECRET_KEY", "k" * 31),
]


def _named(variable: str, message: str) -> bool:
    """Does the message name the setting, as variable, flag or attribute?"""
    name = variable.removeprefix("MEETD_").lower()
    return name in message.lower().replace("-", "_")


@pytest.mark.parametrize(("variable", "value"), INVALID)
def test_invalid_environment_values_are_refused_clearly(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(**{variable: value})
    message = caught.value.message
    assert _named(variable, message), f"{message!r} does not name {variable}"
    assert "Traceback" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"port": 70000}, "MEETD_PORT"),
        ({"database_url": "mysql://db"}, "MEETD_DATABASE_URL"),
        ({"instant_room_ttl_seconds": 0}, "MEETD_INSTANT_ROOM_TTL_SECONDS"),
        ({"callback_retry_schedule": "a,b"}, "MEETD_CALLBACK_RETRY_SCHEDULE"),
        ({"workers": 0}, "MEETD_WORKERS"),
    ],
)
def test_invalid_flags_are_refused_clearly(flags: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(flags)
    assert _named(named, caught.value.message), caught.value.message


# (attribute, invalid value, flag, variable)
NAMED = [
    ("port", 99999, "--port", "MEETD_PORT"),
    ("database_url", "mysql://db/meetd", "--database-url", "MEETD_DATABASE_URL"),
    ("workers", 0, "--workers", "MEETD_WORKERS"),
    ("log_level", "verbose", "--log-level", "MEETD_LOG_LEVEL"),
    ("log_format", "xml", "--log-format", "MEETD_LOG_FORMAT"),
    ("public_url", "meet.example.com", "--public-url", "MEETD_PUBLIC_URL"),
]


@pytest.mark.parametrize(("attribute", "value", "flag", "variable"), NAMED)
def test_a_bad_flag_is_named_as_the_flag(
    attribute: str, value: Any, flag: str, variable: str
) -> None:
    """``--port 99999`` said "MEETD_PORT out of range", a variable the user never set."""
    with pytest.raises(ConfigurationError) as caught:
        build({attribute: value})
    assert caught.value.message.startswith(f"{flag} "), caught.value.message
    assert variable not in caught.value.message


@pytest.mark.parametrize(("attribute", "value", "flag", "variable"), NAMED)
def test_a_bad_variable_is_named_as_the_variable(
    attribute: str, value: Any, flag: str, variable: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(**{variable: str(value)})
    assert caught.value.message.startswith(f"{variable} "), caught.value.message


def test_negative_retry_steps_are_named() -> None:
    """ "-1,5" was told it "needs at least one step >= 0", though 5 is one."""
    with pytest.raises(ConfigurationError) as caught:
        build(MEETD_CALLBACK_RETRY_SCHEDULE="-1,5,-3")
    message = caught.value.message
    assert "0 or more" in message and "-1, -3" in message and "'-1,5,-3'" in message, message
    with pytest.raises(ConfigurationError, match="needs at least one step"):
        build(MEETD_CALLBACK_RETRY_SCHEDULE=" , ")


@pytest.mark.parametrize(
    ("flags", "environ", "message"),
    [
        ({}, {"MEETD_TLS_CERTFILE": "/c.pem"}, "MEETD_TLS_CERTFILE needs MEETD_TLS_KEYFILE too"),
        ({}, {"MEETD_TLS_KEYFILE": "/k.pem"}, "MEETD_TLS_KEYFILE needs MEETD_TLS_CERTFILE too"),
        ({"tls_certfile": Path("/c.pem")}, {}, "--tls-certfile needs --tls-keyfile too"),
        ({"tls_keyfile": Path("/k.pem")}, {}, "--tls-keyfile needs --tls-certfile too"),
    ],
)
def test_tls_needs_both_files_and_names_the_one_given(
    flags: dict[str, Any], environ: dict[str, str], message: str
) -> None:
    """MEETD_TLS_CERTFILE alone was told "--tls-certfile and --tls-keyfile go together",
    flags the user never gave."""
    with pytest.raises(ConfigurationError) as caught:
        build(flags, **environ)
    assert caught.value.message == f"{message}: HTTPS takes a certificate and its key"


def test_no_bucket_means_files_in_the_data_dir() -> None:
    settings = build()
    assert settings.s3_bucket is None
    assert settings.themes_per_application == 50


def test_s3_settings_from_environment() -> None:
    settings = build(
        MEETD_S3_BUCKET="logos",
        MEETD_S3_ENDPOINT_URL="http://127.0.0.1:9000",
        MEETD_S3_REGION="eu-west-1",
        MEETD_S3_ACCESS_KEY_ID="id",
        MEETD_S3_SECRET_ACCESS_KEY="secret",
    )
    assert (settings.s3_bucket, settings.s3_endpoint_url, settings.s3_region) == (
        "logos",
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    assert (settings.s3_access_key_id, settings.s3_secret_access_key) == ("id", "secret")


@pytest.mark.parametrize(
    "variable", ["MEETD_S3_ENDPOINT_URL", "MEETD_S3_REGION", "MEETD_S3_ACCESS_KEY_ID"]
)
def test_s3_settings_need_a_bucket(variable: str) -> None:
    value = "http://s3.local" if variable == "MEETD_S3_ENDPOINT_URL" else "x"
    with pytest.raises(ConfigurationError, match="MEETD_S3_BUCKET is required"):
        build(**{variable: value})


@pytest.mark.parametrize(
    "environ",
    [{"MEETD_S3_ACCESS_KEY_ID": "id"}, {"MEETD_S3_SECRET_ACCESS_KEY": "secret"}],
)
def test_s3_keys_go_together(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="go together"):
        build(MEETD_S3_BUCKET="b", **environ)


def test_s3_endpoint_must_be_a_url() -> None:
    with pytest.raises(ConfigurationError, match="MEETD_S3_ENDPOINT_URL must start with http"):
        build(MEETD_S3_BUCKET="b", MEETD_S3_ENDPOINT_URL="minio:9000")


def test_room_durations_may_reach_ten_years() -> None:
    settings = build(
        MEETD_INSTANT_ROOM_TTL_SECONDS=str(MAX_ROOM_SECONDS),
        MEETD_LONG_TERM_MIN_LEAD_SECONDS=str(MAX_ROOM_SECONDS),
    )
    assert settings.instant_room_ttl_seconds == MAX_ROOM_SECONDS == 315_360_000
    assert settings.long_term_min_lead_seconds == MAX_ROOM_SECONDS


def test_a_secret_key_of_32_characters_is_enough() -> None:
    assert build(MEETD_SECRET_KEY="k" * 32).secret_key == "k" * 32


@pytest.mark.parametrize(("flags", "environ", "named"), [
    ({"port": 0}, {}, "--port"),
    ({}, {"MEETD_PORT": "0"}, "MEETD_PORT"),
], ids=["flag", "environment"])  # fmt: skip
def test_port_zero_is_refused(flags: dict[str, Any], environ: dict[str, str], named: str) -> None:
    """Port 0 was accepted: uvicorn bound a random port, and every room link and the
    "serving on" line named port 0."""
    with pytest.raises(ConfigurationError) as caught:
        build(flags, **environ)
    assert caught.value.message == f"{named} must be between 1 and 65535, got 0"


def test_the_ports_at_the_ends_of_the_range_are_kept() -> None:
    assert build({"port": 1}).port == 1
    assert build(MEETD_PORT="65535").public_url == "http://127.0.0.1:65535"


def test_logs_read_on_a_terminal_default_to_text() -> None:
    assert build_settings({}, {}).log_format == "json"
    assert build_settings({}, {}, logs_to_terminal=True).log_format == "text"


@pytest.mark.parametrize(
    ("flags", "environ"),
    [({"log_format": "json"}, {}), ({}, {"MEETD_LOG_FORMAT": "json"})],
)
def test_a_chosen_log_format_wins_over_the_terminal(
    flags: dict[str, Any], environ: dict[str, str]
) -> None:
    assert build_settings(flags, environ, logs_to_terminal=True).log_format == "json"
