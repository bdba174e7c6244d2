"""What the ``meetd`` commands share: the storage options and the Settings they make, errors
as one line, output (a message on stderr, ``--json``'s one object or lines on stdout, tables),
the database a command works on, and the command group that says where a misplaced option
goes. The commands themselves are in :mod:`meetd.cli`.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from meetd.errors import ConfigurationError, MeetdError
from meetd.settings import Settings, build_settings, shown_database_url

F = TypeVar("F", bound=Callable[..., Any])


def store_options(command: F) -> F:
    """``--data-dir`` and ``--database-url``, shared by every command."""
    command = click.option(
        "--database-url",
        help="sqlite:///relative/to/cwd.db, sqlite:////absolute/path.db or postgresql://… "
        "[env MEETD_DATABASE_URL; default sqlite:///{data dir}/meetd.sqlite3]",
    )(command)
    command = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Database file, uploads and secrets [env MEETD_DATA_DIR; "
        "default ~/.local/share/meetd]",
    )(command)
    return command


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(command)


def settings_from(**flags: Any) -> Settings:
    try:
        return build_settings(flags, logs_to_terminal=sys.stderr.isatty())
    except ConfigurationError as error:
        raise click.UsageError(error.message) from None


def one_line(message: str) -> str:
    """The lines of ``message`` joined into one: libpq, for one, puts "Is the server
    running…?" on an indented line of its own after "Connection refused"."""
    joined = ""
    for line in (part.strip() for part in message.splitlines()):
        if line:
            separator = "" if not joined else " " if joined[-1] in ".:;,?!" else ". "
            joined += separator + line
    return joined


def reports_errors(command: F) -> F:
    """Turn meetd's errors into a one-line message and exit status 1, never a traceback;
    click's own errors (status 2 for a usage error) keep their status, in one line too."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MeetdError as error:
            raise click.ClickException(one_line(error.message)) from None
        except click.ClickException as error:
            if "\n" not in error.format_message():
                raise
            if isinstance(error, click.UsageError):
                raise click.UsageError(one_line(error.format_message()), error.ctx) from None
            raise click.ClickException(one_line(error.format_message())) from None  # status 1

    return wrapper  # type: ignore[return-value]


def say(message: str) -> None:
    click.echo(message, err=True)


def emit(as_json: bool, data: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(data))
    else:
        for line in lines:
            click.echo(line)


class Commands(click.Group):
    """A group of commands that, given an option of a command before the command
    (``meetd --data-dir X serve``), says where it goes instead of only that it is unknown."""

    group_class = type  # its subgroups (``meetd accounts``) are Commands too

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:
            hint = self._where_it_goes(error.option_name, args, ctx.command_path)
            if hint is None:
                raise
            raise click.NoSuchOption(
                error.option_name, f"{error.message} {hint}", ctx=ctx
            ) from None

    def _where_it_goes(self, option: str, args: list[str], prefix: str) -> str | None:
        """The hint: put it after the command ``args`` name, when that takes ``option``
        (``meetd serve --data-dir …``); when they name none, or only a group, the first
        command under it that takes it is the example. None when no command there does."""
        path: list[str] = []
        command: click.Command = self
        for arg in args:
            if isinstance(command, click.Group) and arg in command.commands:
                path.append(arg)
                command = command.commands[arg]
        named = not isinstance(command, click.Group)
        candidates: list[tuple[list[str], click.Command]] = [([], command)] if named else []
        for rest, leaf in candidates + _leaves(command):
            for param in leaf.params:
                if isinstance(param, click.Option) and option in param.opts:
                    value = "" if param.is_flag else " …"
                    example = " ".join([prefix, *path, *rest, option]) + value
                    if named:
                        return f"Put it after the command: {example}"
                    return f"Put it after the command it is for, as in: {example}"
        return None


def _leaves(command: click.Command) -> list[tuple[list[str], click.Command]]:
    """Every command under a group, with its path below it, in the order of ``--help``."""
    if not isinstance(command, click.Group):
        return []
    found: list[tuple[list[str], click.Command]] = []
    for name, sub in sorted(command.commands.items()):
        found += [([name, *rest], leaf) for rest, leaf in _leaves(sub)] or [([name], sub)]
    return found


class open_store:
    """``with open_store(settings) as db``: an open, started Database, closed after."""

    def __init__(self, settings: Settings, *, migrate: bool = False) -> None:
        self.settings = settings
        self.migrate = migrate

    def __enter__(self) -> Any:
        from meetd.data_dir import prepare_database_folder
        from meetd.store import migrations
        from meetd.store.database import open_database

        prepare_database_folder(self.settings.data_dir, self.settings.sqlite_path)
        try:
            self.database = open_database(self.settings.database_url)
        except Exception as error:
            shown = shown_database_url(self.settings.database_url)
            raise click.ClickException(f"cannot open the database {shown}: {error}") from None
        if self.migrate:
            try:
                self.database.write_blocking(migrations.upgrade)
            except BaseException:
                self.database.close()
                raise
        return self.database

    def __exit__(self, *exc: object) -> None:
        self.database.close()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """``rows`` under ``header`` in columns two spaces apart; the last column is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  ".join([*(row[i].ljust(width) for i, width in enumerate(widths)), row[-1]]).rstrip()
        for row in [header, *rows]
    ]
