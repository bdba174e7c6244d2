"""The error tree. Domain and store code raise these; they know nothing of HTTP.

``meetd.api.errors`` is the one place that turns them into status codes and Vonage bodies.
"""

from __future__ import annotations

from typing import Any


class MeetdError(Exception):
    """Base of every error meetd raises on purpose."""

    def __init__(self, message: str, *, errors: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class InputValidationError(MeetdError):
    """The request's body or query fails validation; the message names the field."""


class BadRequestError(MeetdError):
    """Valid input that the current state forbids."""


class NotFoundError(MeetdError):
    """The thing does not exist, or belongs to another application."""


class ConflictError(MeetdError):
    """A uniqueness rule would be broken."""


class ForbiddenError(MeetdError):
    """The action is not allowed (limits, states that cannot change)."""


class AuthenticationError(MeetdError):
    """The credentials are missing or wrong. The message is for logs, never for the client."""


class ConfigurationError(MeetdError):
    """Settings or command-line values that cannot work."""
