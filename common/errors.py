"""One error base class with a code and an HTTP status; the gateway renders it in one shape:
``{"error": {"code", "message", "request_id"}}``."""

from __future__ import annotations


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.headers = headers or {}


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class ServiceUnavailable(AppError):
    """A dependency (Redis, PostgreSQL, the embedder) is down: the client should retry."""

    status_code = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})
