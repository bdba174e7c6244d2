"""The data dir: where the SQLite database, the secret key and uploaded files live.

meetd creates it on first use, readable by its owner only (mode 700): the database in it holds
the applications' signature secrets, and ``secret_key`` signs host links. A folder that a
database URL names elsewhere is never created: a typo there would otherwise leave the state in
a folder nobody looks at (``sqlite:///var/x.db`` is relative to the current directory).
"""

from __future__ import annotations

from pathlib import Path

from meetd.errors import ConfigurationError

MODE = 0o700


class DataDirError(ConfigurationError):
    """The data dir, or the folder of the SQLite database, cannot be used."""


def make_data_dir(data_dir: Path) -> None:
    """Create ``data_dir`` (and its parents) unless it exists; mode 700 when created."""
    try:
        data_dir.mkdir(mode=MODE, parents=True, exist_ok=True)
    except FileExistsError:
        raise DataDirError(f"the data dir {data_dir} is a file, not a folder") from None
    except OSError as error:
        raise DataDirError(
            f"cannot create the data dir {data_dir}: {error.strerror or error}"
        ) from None


def prepare_database_folder(data_dir: Path, sqlite_path: Path | None) -> None:
    """Make sure the SQLite file's folder exists: create it when it is the data dir, else
    refuse with a message naming the missing folder. Nothing to do for PostgreSQL."""
    if sqlite_path is None:
        return
    folder = sqlite_path.parent.resolve()
    if folder == data_dir:
        make_data_dir(data_dir)
    elif not folder.is_dir():
        raise DataDirError(
            f"the folder {folder} for the SQLite database does not exist; create it, or fix "
            "the URL (sqlite:///relative/to/cwd.db, sqlite:////absolute/path.db)"
        )
