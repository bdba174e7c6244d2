"""Property tests of room validation: any JSON is either a room or an InputValidationError."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meetd.domain.rooms import (
    CREATE_FIELDS,
    DEFAULT_OPTIONS,
    FEATURE_DEFAULTS,
    JOIN_APPROVAL_LEVELS,
    LANGUAGES,
    MICROPHONE_STATES,
    parse_new_room,
    parse_room_update,
)
from meetd.domain.timestamps import format_timestamp
from meetd.errors import InputValidationError

NOW = 1_800_000_000_000
LEAD = 600

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
field_names = st.sampled_from([*CREATE_FIELDS, "other"])


@settings(max_examples=300)
@given(st.dictionaries(field_names, json_values, max_size=6) | json_values)
def test_any_json_is_a_room_or_a_named_validation_error(body: Any) -> None:
    try:
        room = parse_new_room(body, now_ms=NOW, min_lead_seconds=LEAD)
    except InputValidationError as error:
        assert error.message.startswith('"'), error.message
        return
    assert isinstance(room.display_name, str) and 1 <= len(room.display_name) <= 200


valid_bodies = st.fixed_dictionaries(
    {"display_name": st.text(min_size=1, max_size=200).filter(lambda s: "\x00" not in s)},
    optional={
        "metadata": st.none() | st.text(max_size=500).filter(lambda s: "\x00" not in s),
        "expire_after_use": st.booleans(),
        "recording_options": st.fixed_dictionaries(
            {}, optional={"auto_record": st.booleans(), "record_only_owner": st.booleans()}
        ),
        "join_approval_level": st.sampled_from(JOIN_APPROVAL_LEVELS),
        "initial_join_options": st.fixed_dictionaries(
            {}, optional={"microphone_state": st.sampled_from(MICROPHONE_STATES)}
        ),
        "ui_settings": st.fixed_dictionaries({}, optional={"language": st.sampled_from(LANGUAGES)}),
        "available_features": st.fixed_dictionaries(
            {}, optional={key: st.booleans() for key in FEATURE_DEFAULTS}
        ),
    },
)


@settings(max_examples=200)
@given(valid_bodies, st.integers(min_value=LEAD * 1000 + 1, max_value=10**11))
def test_valid_bodies_are_accepted_with_every_value_kept(body: dict[str, Any], ahead: int) -> None:
    long_term = {**body, "type": "long_term", "expires_at": format_timestamp(NOW + ahead)}
    for sent in (body, long_term):
        room = parse_new_room(sent, now_ms=NOW, min_lead_seconds=LEAD)
        assert room.display_name == sent["display_name"]
        assert room.metadata == sent.get("metadata")
        assert room.expire_after_use == sent.get("expire_after_use", False)
        for key in ("recording_options", "available_features"):
            for flag, value in sent.get(key, {}).items():
                assert room.options[key][flag] == value
        defaults = DEFAULT_OPTIONS["available_features"]
        for flag, value in room.options["available_features"].items():
            assert value == sent.get("available_features", {}).get(flag, defaults[flag])
    assert parse_new_room(long_term, now_ms=NOW, min_lead_seconds=LEAD).expires_at == NOW + ahead


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["update_details", "update_options", "x"]), json_values))
def test_any_update_is_a_change_or_a_named_validation_error(body: Any) -> None:
    try:
        parse_room_update(body, DEFAULT_OPTIONS, now_ms=NOW, min_lead_seconds=LEAD)
    except InputValidationError as error:
        assert error.message.startswith('"'), error.message
