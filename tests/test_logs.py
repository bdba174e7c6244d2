import json
import logging

from meetd.logs import JSONFormatter, TextFormatter, logging_config


def test_a_record_is_one_json_object_with_its_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "meetd.sweeper", "levelname": "INFO", "msg": "rooms expired %s", "args": (3,)}
    )
    record.count = 3
    entry = json.loads(JSONFormatter().format(record))
    assert entry["message"] == "rooms expired 3"
    assert entry["level"] == "info" and entry["logger"] == "meetd.sweeper"
    assert entry["count"] == 3
    assert entry["time"].endswith("Z")


def test_exceptions_travel_in_the_object() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.makeLogRecord({"msg": "failed", "exc_info": __import__("sys").exc_info()})
    entry = json.loads(JSONFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]


def test_text_format_and_level_reach_meetd_and_uvicorn() -> None:
    config = logging_config("warning", "text")
    assert config["formatters"]["default"] == {"()": TextFormatter}
    assert config["loggers"]["meetd"]["level"] == "WARNING"
    assert config["loggers"]["uvicorn"]["level"] == "WARNING"


def test_text_format_keeps_the_extra_fields_as_key_value() -> None:
    """They were dropped: "authentication failed" said neither why nor where."""
    record = logging.makeLogRecord(
        {"name": "meetd.api", "levelname": "INFO", "msg": "authentication failed"}
    )
    record.reason = "wrong secret"
    record.path = "/v1/meetings/rooms"
    record.count = 3
    record.empty = ""
    line = TextFormatter().format(record)
    assert line.endswith(
        'INFO meetd.api: authentication failed reason="wrong secret" '
        'path=/v1/meetings/rooms count=3 empty=""'
    ), line
    assert "\n" not in line
