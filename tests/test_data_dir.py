"""The data dir is made on first use, private to its owner; other folders never are."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from meetd.data_dir import DataDirError, make_data_dir, prepare_database_folder


def test_the_data_dir_is_created_private_with_its_parents(tmp_path: Path) -> None:
    data_dir = tmp_path / "a" / "b" / "data"
    make_data_dir(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    make_data_dir(data_dir)  # again: nothing to do


def test_an_existing_data_dir_keeps_its_mode(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    make_data_dir(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o755


def test_a_data_dir_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(DataDirError, match=f"data dir {tmp_path / 'file'} is a file"):
        make_data_dir(tmp_path / "file")


def test_a_data_dir_under_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(DataDirError, match=f"cannot create the data dir {tmp_path / 'file'}/x"):
        make_data_dir(tmp_path / "file" / "x")


def test_the_default_database_folder_is_the_data_dir_and_is_made(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    prepare_database_folder(data_dir, data_dir / "meetd.sqlite3")
    assert data_dir.is_dir()


def test_another_missing_folder_is_refused_and_not_made(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match=f"folder {tmp_path / 'elsewhere'} for the SQLite"):
        prepare_database_folder(tmp_path / "data", tmp_path / "elsewhere" / "x.db")
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "data").exists()


def test_an_existing_folder_and_postgresql_need_nothing(tmp_path: Path) -> None:
    prepare_database_folder(tmp_path / "data", tmp_path / "x.db")
    prepare_database_folder(tmp_path / "data", None)
    assert not (tmp_path / "data").exists()
