"""LocalFileStore: files under the data dir, atomic writes, keys that cannot escape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meetd.clock import FakeClock
from meetd.files import UPLOAD_FORM_SECONDS, FileStore, StoredFile
from meetd.files.factory import open_file_store
from meetd.files.keys import MAX_SEGMENT_LENGTH
from meetd.files.local import LocalFileStore
from meetd.settings import Settings

TEMP = "auto-expiring-temp/logos/white/6f1c"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def local(tmp_path: Path, clock: FakeClock) -> LocalFileStore:
    return LocalFileStore(
        tmp_path / "files", public_url="https://meet.test", signing_key=b"k" * 32, clock=clock
    )


def test_the_factory_picks_the_data_dir_without_a_bucket(settings: Settings) -> None:
    store: FileStore = open_file_store(settings, b"k" * 32, FakeClock())
    assert isinstance(store, LocalFileStore)
    assert store.root == settings.data_dir / "files"
    assert store.public_url("logos/a") == "https://meet.example.test/files/logos/a"


def test_write_read_size_delete(local: LocalFileStore, tmp_path: Path) -> None:
    assert local.read(TEMP) is None
    assert local.read(TEMP) is None
    local.write(TEMP, b"\x89PNG data", content_type="image/png")
    assert (tmp_path / "files" / TEMP).read_bytes() == b"\x89PNG data"
    assert len(local.read(TEMP) or b"") == 9
    assert local.read(TEMP) == b"\x89PNG data"
    local.write(TEMP, b"new", content_type="image/png")
    assert local.read(TEMP) == b"new"
    local.delete(TEMP)
    assert local.read(TEMP) is None
    local.delete(TEMP)  # a missing file is not an error


def test_a_write_leaves_no_temporary_file_behind(local: LocalFileStore, tmp_path: Path) -> None:
    local.write("logos/white/a", b"x", content_type="image/png")
    assert os.listdir(tmp_path / "files" / "logos" / "white") == ["a"]


def test_a_failed_write_leaves_the_old_file_whole(
    local: LocalFileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local.write("logos/white/a", b"old", content_type="image/png")

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        local.write("logos/white/a", b"new and longer", content_type="image/png")
    monkeypatch.undo()
    assert local.read("logos/white/a") == b"old"
    assert os.listdir(tmp_path / "files" / "logos" / "white") == ["a"]


def test_fetch(local: LocalFileStore, clock: FakeClock) -> None:
    local.write(TEMP, b"logo", content_type="image/png")
    written = clock.now_ms() / 1000
    clock.advance(5)
    assert local.fetch(TEMP, max_bytes=4) == StoredFile(size=4, modified=written, data=b"logo")
    # Longer than the limit: its size and time, not its bytes.
    assert local.fetch(TEMP, max_bytes=3) == StoredFile(size=4, modified=written, data=None)
    assert local.fetch("auto-expiring-temp/nothing", max_bytes=10) is None
    local.write("logos/white/a", b"x", content_type="image/png")
    assert local.fetch("logos/white", max_bytes=10) is None  # a directory is not a file
    assert local.fetch("../secret_key", max_bytes=10) is None


def test_fetch_reads_one_version(local: LocalFileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that lands between the open and the read changes nothing fetched: size,
    time and bytes are all the opened file's."""
    local.write(TEMP, b"first", content_type="image/png")
    fstat = os.fstat

    def fstat_then_write(fd: int) -> os.stat_result:
        found = fstat(fd)
        local.write(TEMP, b"second, longer", content_type="image/png")
        return found

    monkeypatch.setattr(os, "fstat", fstat_then_write)
    found = local.fetch(TEMP, max_bytes=100)
    monkeypatch.undo()
    assert found is not None
    assert (found.size, found.data) == (5, b"first")
    assert local.read(TEMP) == b"second, longer"


@pytest.mark.parametrize("key", ["../secret_key", "logos/../../secret_key", ".x", "a//b"])
def test_invalid_keys_name_no_file(local: LocalFileStore, tmp_path: Path, key: str) -> None:
    (tmp_path / "secret_key").write_text("secret")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / ".x").write_text("hidden")
    assert local.path(key) is None
    assert local.read(key) is None
    assert local.read(key) is None
    assert local.fetch(key, max_bytes=10) is None
    local.delete(key)
    assert (tmp_path / "secret_key").exists()
    with pytest.raises(ValueError, match="not a valid file key"):
        local.write(key, b"x", content_type="image/png")


def test_directories_are_not_files(local: LocalFileStore) -> None:
    local.write("logos/white/a", b"x", content_type="image/png")
    assert local.read("logos/white") is None
    assert local.read("logos/white") is None
    assert local.read("logos/white/a/b") is None  # under a file
    local.delete("logos/white")
    assert local.read("logos/white/a") == b"x"


def test_the_longest_segment_is_a_file_name(local: LocalFileStore) -> None:
    key = "logos/" + "a" * MAX_SEGMENT_LENGTH
    local.write(key, b"x", content_type="image/png")  # its temporary name fits too
    assert local.read(key) == b"x"


def test_a_name_the_file_system_refuses_is_no_file(local: LocalFileStore) -> None:
    # Keys are checked first, yet a valid key may still be a name the OS refuses (a symlink
    # loop here; a segment past a smaller NAME_MAX elsewhere): no file, not an error.
    local.write("logos/white/a", b"x", content_type="image/png")
    os.symlink("loop", local.root / "logos" / "loop")
    assert local.read("logos/loop") is None
    assert local.stat("logos/loop/a") is None
    assert local.read("logos/loop") is None
    assert local.fetch("logos/loop", max_bytes=10) is None
    local.delete("logos/loop/a")


def test_stale_temporary_files_are_deleted_after_the_forms_life(
    local: LocalFileStore, clock: FakeClock, tmp_path: Path
) -> None:
    local.write(TEMP, b"old", content_type="image/png")
    local.write("logos/white/kept", b"final", content_type="image/png")
    clock.advance(UPLOAD_FORM_SECONDS - 1)
    local.write("auto-expiring-temp/logos/colored/new", b"new", content_type="image/png")
    leftover = tmp_path / "files" / "auto-expiring-temp" / "logos" / ".crashed.tmp"
    leftover.write_bytes(b"half")
    os.utime(leftover, (0, 0))
    now = clock.now_ms() / 1000
    assert local.delete_stale_temporary(now) == 1  # the crashed write's leftover
    assert len(local.read(TEMP) or b"") == 3  # written UPLOAD_FORM_SECONDS - 1 ago: kept
    assert not leftover.exists()
    assert local.delete_stale_temporary(now + 1) == 0  # exactly UPLOAD_FORM_SECONDS old
    assert local.delete_stale_temporary(now + 1.001) == 1
    assert local.read(TEMP) is None
    assert local.read("auto-expiring-temp/logos/colored/new") == b"new"
    assert local.read("logos/white/kept") == b"final"  # only temporary files go
    assert local.delete_stale_temporary(now + 2 * UPLOAD_FORM_SECONDS) == 1
    assert local.delete_stale_temporary(now + 2 * UPLOAD_FORM_SECONDS) == 0


def test_no_temporary_directory_means_nothing_to_delete(local: LocalFileStore) -> None:
    assert local.delete_stale_temporary(10**10) == 0


def test_download_urls_and_public_urls(local: LocalFileStore, clock: FakeClock) -> None:
    url = local.download_url("recordings/a.mp4", expires_in=60)
    expires = clock.now_ms() // 1000 + 60
    prefix = f"https://meet.test/files/recordings/a.mp4?expires={expires}&signature="
    assert url.startswith(prefix)
    signature = url.removeprefix(prefix)
    assert local.verify_link("recordings/a.mp4", expires=str(expires), signature=signature)
    clock.advance(60)
    assert not local.verify_link("recordings/a.mp4", expires=str(expires), signature=signature)
    assert local.public_url("logos/white/a") == "https://meet.test/files/logos/white/a"
    with pytest.raises(ValueError, match="not a valid file key"):
        local.download_url("../x", expires_in=60)


def test_an_upload_form_points_at_meetd(local: LocalFileStore, clock: FakeClock) -> None:
    form = local.upload_form(
        TEMP, content_type="image/png", max_bytes=100, extra_fields={"logoType": "white"}
    )
    assert form.url == "https://meet.test/uploads"
    assert form.fields["key"] == TEMP
    assert form.fields["logoType"] == "white"
    policy = local.verify_upload(form.fields)
    assert policy.expires == clock.now_ms() // 1000 + UPLOAD_FORM_SECONDS
    assert policy.max_bytes == 100
