"""The error envelope: every failure is {"ok": false, "error": ..., "code": N} with status N."""
from __future__ import annotations

import secrets
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..store import StoreUnavailable

log = structlog.get_logger("alertd.api")


class ApiError(Exception):
    def __init__(self, code: int, error: str, headers: dict | None = None, **extra: Any):
        super().__init__(error)
        self.code, self.error, self.headers, self.extra = code, error, headers, extra


def envelope(code: int, error: str, headers: dict | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"ok": False, "error": error, "code": code, **extra}, status_code=code, headers=headers)


def describe_validation(exc: ValidationError | RequestValidationError) -> str:
    """The first problem, naming the field: "repeat: must be between 1 and 5"."""
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query")]
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        msg = "is required"
    field = ".".join(loc)
    if field and msg.startswith(field):
        return msg
    return f"{field}: {msg}" if field else msg


_REASONS = {404: "Not found.", 405: "Method not allowed.", 413: "Request body too large."}


def response_for(request: Request, exc: Exception) -> JSONResponse:
    """The envelope for any exception raised by an endpoint."""
    if isinstance(exc, ApiError):
        return envelope(exc.code, exc.error, exc.headers, **exc.extra)
    if isinstance(exc, StoreUnavailable):  # disk full, locked, read-only: never ok
        log.error("database error", path=request.url.path, error=str(exc))
        return envelope(503, "The database cannot be written; nothing was accepted. Try again.",
                        {"Retry-After": "5"})
    if isinstance(exc, (RequestValidationError, ValidationError)):
        return envelope(400, describe_validation(exc))
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else "Error."
        return envelope(exc.status_code, _REASONS.get(exc.status_code, detail), getattr(exc, "headers", None))
    ref = secrets.token_hex(6)
    log.error("unexpected error", ref=ref, path=request.url.path, exc_info=exc)
    return envelope(500, f"Internal error (reference {ref}); see the alertd log.")


def install(app: FastAPI) -> None:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return response_for(request, exc)

    for kind in (ApiError, StoreUnavailable, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handler)
