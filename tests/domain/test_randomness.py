"""Tests for meetd.domain.randomness: UUID format and uniqueness, byte counts across block
boundaries, and fresh bytes in a forked child."""

from __future__ import annotations

import os
import uuid
import warnings

import pytest

from meetd.domain.randomness import new_uuid, random_bytes


def test_new_uuid_is_canonical_version_4_rfc_4122() -> None:
    for _ in range(1_000):
        u = new_uuid()
        parsed = uuid.UUID(u)
        assert str(parsed) == u
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_new_uuid_has_no_duplicates_over_thousands_of_calls() -> None:
    ids = [new_uuid() for _ in range(5_000)]
    assert len(set(ids)) == len(ids)


def test_new_uuid_keeps_working_across_several_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    real_urandom = os.urandom
    refills: list[int] = []

    def counting_urandom(n: int) -> bytes:
        refills.append(n)
        return real_urandom(n)

    monkeypatch.setattr(os, "urandom", counting_urandom)
    ids = [new_uuid() for _ in range(1_000)]
    assert len(refills) >= 3
    assert len(set(ids)) == 1_000
    assert all(uuid.UUID(u).version == 4 for u in ids)


@pytest.mark.parametrize("count", [0, 1, 16, 4_095, 4_096, 4_097, 10_000])
def test_random_bytes_returns_exactly_the_count_asked_for(count: int) -> None:
    data = random_bytes(count)
    assert isinstance(data, bytes)
    assert len(data) == count


def test_consecutive_random_bytes_differ() -> None:
    draws = [random_bytes(16) for _ in range(1_000)]
    assert len(set(draws)) == len(draws)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_reuse_the_parents_bytes() -> None:
    random_bytes(16)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.write(write_end, random_bytes(16))
        finally:
            os._exit(0)
    os.close(write_end)
    parent_bytes = random_bytes(16)
    child_bytes = b""
    while chunk := os.read(read_end, 16):
        child_bytes += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(child_bytes) == 16
    assert child_bytes != parent_bytes
