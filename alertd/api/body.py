"""Reading a request's body: the one reader for notify, templates, hooks, silences and the dashboard."""
from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from .errors import ApiError, describe_validation
from .limits import BodyTooLarge


async def read_body(request: Request, limit: int, *, allow_empty: bool = False, fast: bool = False) -> Any:
    """The JSON (or form) body; None when empty and ``allow_empty``. Raises ApiError 400 / 413.

    ``fast``: parse with orjson, which reads an integer beyond 64 bits as a float:
    fine for notify's fields, not for a webhook's event (a rule may template it)."""
    raw = await request.body()  # never more than the limit: alertd/api/limits.py stops it sooner
    if len(raw) > limit:
        raise BodyTooLarge(limit)
    ctype = request.headers.get("content-type", "")
    looks_json = raw.lstrip()[:1] in (b"{", b"[")  # curl -d without a Content-Type still sends JSON
    if not looks_json and (ctype.startswith("application/x-www-form-urlencoded")
                           or ctype.startswith("multipart/form-data")):
        async with request.form() as form:  # closes what a multipart part spooled
            for k, v in form.multi_items():
                if not isinstance(v, str):  # it would reach a message as "UploadFile(filename=...)"
                    raise ApiError(400, f"{k}: a file upload; send text fields only")
            return {k: (form.getlist(k) if len(form.getlist(k)) > 1 else v) for k, v in form.items()}
    if not raw.strip():
        if allow_empty:
            return None
        raise ApiError(400, "Request body is empty: send a JSON object.")
    if fast:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:  # the standard library says what is wrong in the words people search for
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from None
    except ValueError:  # what else json.loads raises: int() refuses integers of more than 4300 digits
        raise ApiError(400, "Malformed JSON body: an integer has more than 4300 digits.") from None
    except RecursionError:
        raise ApiError(400, "Malformed JSON body: nested too deeply.") from None


def parse(model: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, describe_validation(exc)) from None
