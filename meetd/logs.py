"""Structured logs on stderr: one JSON object per line, or text for people (``--log-format``;
text by default when stderr is a terminal, meetd.settings.build_settings).

Fields passed with ``extra={...}`` become keys of the object, or ``key=value`` pairs after
the message in text.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call passed with ``extra={...}``."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value …``; a value with spaces is quoted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        pairs = [f"{key}={_text_value(value)}" for key, value in extra_fields(record).items()]
        return " ".join([super().formatMessage(record), *pairs])


def _text_value(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text


def logging_config(level: str = "info", log_format: str = "json") -> dict[str, Any]:
    """A dictConfig for meetd and uvicorn alike."""
    formatter = {"()": JSONFormatter if log_format == "json" else TextFormatter}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "meetd": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }
