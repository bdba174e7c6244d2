import threading
from pathlib import Path

import pytest

from meetd.errors import ConfigurationError
from meetd.secret_key import MIN_LENGTH, derive_key, key_id, load_or_create_secret_key


def test_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secret_key(tmp_path / "data")
    assert len(first) >= 40
    path = tmp_path / "data" / "secret_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret_key(tmp_path / "data") == first
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary left


def test_a_configured_key_wins_and_writes_nothing(tmp_path: Path) -> None:
    assert load_or_create_secret_key(tmp_path, "configured") == "configured"
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("kept", ["", "\n", "short-key\n", "k" * (MIN_LENGTH - 1)])
def test_a_kept_key_too_short_is_refused(tmp_path: Path, kept: str) -> None:
    """An empty file once counted as a key."""
    (tmp_path / "secret_key").write_text(kept)
    with pytest.raises(ConfigurationError) as caught:
        load_or_create_secret_key(tmp_path)
    message = caught.value.message
    assert str(tmp_path / "secret_key") in message and f"fewer than {MIN_LENGTH}" in message


def test_a_kept_key_of_the_minimum_length_is_used(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("k" * MIN_LENGTH + "\n")
    assert load_or_create_secret_key(tmp_path) == "k" * MIN_LENGTH


def load_together(data_dir: Path, processes: int) -> list[str | BaseException]:
    """``processes`` threads load the key at the same moment; what each got."""
    start = threading.Barrier(processes)
    results: list[str | BaseException] = []

    def load() -> None:
        start.wait()
        try:
            results.append(load_or_create_secret_key(data_dir))
        except BaseException as error:
            results.append(error)

    threads = [threading.Thread(target=load) for _ in range(processes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_servers_starting_together_share_one_whole_key(tmp_path: Path) -> None:
    """Every process reads the key one of them wrote, never an empty or partial file."""
    for attempt in range(20):
        results = load_together(tmp_path / str(attempt), 8)
        assert len(set(results)) == 1, results
        key = results[0]
        assert isinstance(key, str) and len(key) >= MIN_LENGTH
        assert (tmp_path / str(attempt) / "secret_key").read_text().strip() == key


def test_derived_keys_differ_by_purpose_and_key_ids_by_key() -> None:
    assert derive_key("k", "host-token") != derive_key("k", "uploads")
    assert len(derive_key("k", "host-token")) == 32
    assert key_id("a") != key_id("b") and key_id("a") == key_id("a")
