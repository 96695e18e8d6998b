"""Business refusals raised by services and turned into messages by views and the API."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A refusal with a machine code, an HTTP status and extra fields for the API."""

    status = 422
    code = "refused"

    def __init__(self, message: str, *, code: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields


class InvalidInput(ServiceError):
    """The request is malformed or a value is not acceptable."""

    status = 400
    code = "invalid_request"


class NotFound(ServiceError):
    """The object does not exist, or is outside the user's scope (same answer)."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The user's role may not do this."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The request collides with the current state (already paid, in progress...)."""

    status = 409
    code = "conflict"


class Refused(ServiceError):
    """A domain rule refused the request."""

    status = 422
    code = "refused"


class Unauthorized(ServiceError):
    """No valid credentials."""

    status = 401
    code = "unauthorized"


class Throttled(ServiceError):
    """Too many attempts; try again after ``retry_after`` seconds."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after
