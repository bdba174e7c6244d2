from pathlib import Path

from meetd.secret_key import derive_key, key_id, load_or_create_secret_key


def test_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secret_key(tmp_path / "data")
    assert len(first) >= 40
    path = tmp_path / "data" / "secret_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret_key(tmp_path / "data") == first


def test_a_configured_key_wins_and_writes_nothing(tmp_path: Path) -> None:
    assert load_or_create_secret_key(tmp_path, "configured") == "configured"
    assert not (tmp_path / "secret_key").exists()


def test_derived_keys_differ_by_purpose_and_key_ids_by_key() -> None:
    assert derive_key("k", "host-token") != derive_key("k", "uploads")
    assert len(derive_key("k", "host-token")) == 32
    assert key_id("a") != key_id("b") and key_id("a") == key_id("a")
