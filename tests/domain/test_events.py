"""Callback events, the pure part (meetd.domain.events): signatures checked independently with
PyJWT, the exact body, the metadata header, the retry schedule and where each type goes."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from urllib.parse import unquote

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetd.domain import events

T0 = 1_800_000_000_000  # 2027-01-15T08:00:00.000Z
SECRET = "the-applications-signature-secret"
APPLICATION_ID = "4f1f3d56-8a3e-4c3f-9a55-1d7e1f4b9c11"


def body_of(**extra: str) -> bytes:
    event = events.room_expired(
        "0e0f4d5c-4a4c-4f4b-9c58-6f6c1b0a2b3d", "instant", expires_at=T0, created_at=T0 - 600_000
    )
    return events.event_body({**event, **extra}, event_id=str(uuid.uuid4()), now_ms=T0)


# -- signing ----------------------------------------------------------------------------------


def test_a_signature_verifies_with_pyjwt_and_carries_the_body_hash() -> None:
    body = body_of()
    now_s = int(time.time())  # PyJWT refuses an iat in the future, as a receiver should
    token = events.sign(body, secret=SECRET, application_id=APPLICATION_ID, now_s=now_s)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["payload_hash"] == hashlib.sha256(body).hexdigest()
    assert claims["iat"] == now_s
    assert uuid.UUID(claims["jti"])
    assert claims["application_id"] == APPLICATION_ID
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_every_signature_has_its_own_jti() -> None:
    body = body_of()
    tokens = [
        events.sign(body, secret=SECRET, application_id=APPLICATION_ID, now_s=1) for _ in range(3)
    ]
    jtis = {jwt.decode(t, SECRET, algorithms=["HS256"])["jti"] for t in tokens}
    assert len(jtis) == 3


def test_a_wrong_secret_fails_verification() -> None:
    token = events.sign(body_of(), secret=SECRET, application_id=APPLICATION_ID, now_s=1)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET.replace("the", "one"), algorithms=["HS256"])
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(token, SECRET, algorithms=["RS256"])


def test_the_hash_changes_with_a_single_byte() -> None:
    body = body_of()
    token = events.sign(body, secret=SECRET, application_id=APPLICATION_ID, now_s=1)
    claimed = jwt.decode(token, SECRET, algorithms=["HS256"])["payload_hash"]
    tampered = body.replace(b"instant", b"Instant")
    assert tampered != body
    assert hashlib.sha256(tampered).hexdigest() != claimed


# -- bodies -----------------------------------------------------------------------------------


def test_the_body_is_the_contracts_plus_event_id_and_timestamp() -> None:
    room_id = str(uuid.uuid4())
    event = events.room_expired(room_id, "long_term", expires_at=T0, created_at=T0 - 1)
    body = events.event_body(event, event_id="e-1", now_ms=T0 + 5)
    assert json.loads(body) == {
        "event": "room:expired",
        "room_id": room_id,
        "room_type": "long_term",
        "expires_at": "2027-01-15T08:00:00.000Z",
        "created_at": "2027-01-15T07:59:59.999Z",
        "event_id": "e-1",
        "timestamp": "2027-01-15T08:00:00.005Z",
    }
    assert list(json.loads(body)) == [
        "event",
        "room_id",
        "room_type",
        "expires_at",
        "created_at",
        "event_id",
        "timestamp",
    ]
    assert b" " not in body  # compact: the bytes signed are the bytes sent


def test_new_event_ids_are_uuids_and_differ() -> None:
    ids = {events.new_event_id() for _ in range(5)}
    assert len(ids) == 5
    assert all(str(uuid.UUID(i)) == i for i in ids)


# -- the metadata header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        "plain",
        "",
        "a b+c&d=e/f?g#h%i",
        "line one\nline two\r\n",
        "Zoë — ミーティング 🎥",
        '{"json": ["with", "quotes"]}',
    ],
)
def test_metadata_travels_as_an_ascii_header_that_unquote_reads(metadata: str) -> None:
    value = events.metadata_header(metadata)
    assert value.isascii() and value.isprintable()
    assert "\n" not in value and "\r" not in value and " " not in value
    assert unquote(value) == metadata


@given(st.text(max_size=500))
def test_any_metadata_round_trips(metadata: str) -> None:
    value = events.metadata_header(metadata)
    assert value.isascii()
    assert unquote(value) == metadata


def test_unreserved_characters_stay_readable() -> None:
    assert events.metadata_header("Team-A_1.2~x") == "Team-A_1.2~x"


# -- the retry schedule -----------------------------------------------------------------------


def test_each_failure_waits_its_step_of_the_schedule_then_gives_up() -> None:
    schedule = (1, 5, 30, 3600)
    now = T0
    waits = []
    for attempts in range(1, len(schedule) + 1):
        due = events.next_attempt_at(attempts, now, schedule)
        assert due is not None
        waits.append(due - now)
        now = due
    assert waits == [1000, 5000, 30_000, 3_600_000]
    assert events.next_attempt_at(len(schedule) + 1, now, schedule) is None
    assert events.next_attempt_at(len(schedule) + 7, now, schedule) is None


def test_an_empty_schedule_never_retries() -> None:
    assert events.next_attempt_at(1, T0, ()) is None


def test_no_retry_before_a_failed_attempt() -> None:
    with pytest.raises(ValueError):
        events.next_attempt_at(0, T0, (1,))


def test_the_default_schedule_spans_about_a_day() -> None:
    from meetd.settings import DEFAULT_RETRY_SCHEDULE

    assert 12 * 3600 <= sum(DEFAULT_RETRY_SCHEDULE) <= 48 * 3600
    assert list(DEFAULT_RETRY_SCHEDULE) == sorted(DEFAULT_RETRY_SCHEDULE)


# -- kinds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("room:expired", "rooms"),
        ("session:started", "sessions"),
        ("session:ended", "sessions"),
        ("session:participant:joined", "sessions"),
        ("session:participant:left", "sessions"),
        ("recording:started", "recordings"),
        ("recording:ended", "recordings"),
        ("recording:ready", "recordings"),
    ],
)
def test_each_type_goes_to_its_kinds_url(event_type: str, kind: str) -> None:
    assert events.kind_of(event_type) == kind
    assert kind in events.KINDS


def test_every_type_has_a_kind() -> None:
    assert {events.kind_of(t) for t in events.EVENT_TYPES} == set(events.KINDS)


@pytest.mark.parametrize("event_type", ["room:created", "rooms", "", "session"])
def test_an_unknown_type_has_no_kind(event_type: str) -> None:
    with pytest.raises(ValueError):
        events.kind_of(event_type)


def test_excerpts_are_bounded() -> None:
    assert events.excerpt("short", 10) == "short"
    cut = events.excerpt("x" * 50, 10)
    assert len(cut) == 10 and cut.endswith("…")
