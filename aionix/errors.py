"""One error hierarchy for every service, mapped once to the HTTP envelope and CLI exit codes.

Raise these from service code; `aionix.api` turns them into `{"error": {code, message, details}}`
with `status`, and the CLI maps the status back to its exit codes.
"""

from __future__ import annotations

from typing import Any


class AionixError(Exception):
    """Base of every error a user can cause or see; `code` is stable, `message` one line."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(AionixError):
    status = 400
    code = "bad_request"


class Unauthorized(AionixError):
    status = 401
    code = "unauthorized"


class Forbidden(AionixError):
    status = 403
    code = "forbidden"


class NotFound(AionixError):
    status = 404
    code = "not_found"


class MethodNotAllowed(AionixError):
    status = 405
    code = "method_not_allowed"


class Conflict(AionixError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AionixError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(AionixError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(AionixError):
    """The body parsed but breaks the schema; `details` lists `{field, message}` items."""

    status = 422
    code = "validation_failed"


class RateLimited(AionixError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Unavailable(AionixError):
    """A dependency (store, runtime) cannot serve the call right now; safe to retry."""

    status = 503
    code = "unavailable"


class StoreError(Unavailable):
    code = "store_error"


class ConfigError(AionixError):
    """A bad configuration value; the message names the key and the reason."""

    status = 400
    code = "config_error"


class TRNError(BadRequest):
    """A malformed TRN; `details` holds the 0-based `position` of the fault."""

    code = "invalid_trn"


def field_error(field: str, message: str, status: type[AionixError] = ValidationFailed) -> AionixError:
    """An error about one input field, in the shape every route uses."""
    return status(f"{field}: {message}", details=[{"field": field, "message": message}])
