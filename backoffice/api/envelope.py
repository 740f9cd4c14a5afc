"""The one JSON envelope of every API response (DESIGN §4).

success: {"status": 200, "message": "sale refunded", "data": {...}}
error:   {"status": 422, "error": "human sentence", "code": "...", "errors": {"path": [..]}}
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response

from backoffice.errors import DomainError


class Envelope(dict):
    """A body already in the envelope: the renderer passes it through as is."""


class RawJSON(str):
    """A `data` already rendered as JSON text (by PostgreSQL): the renderer embeds it as
    is instead of encoding it again."""


def success(data: Any, message: str = "ok", status: int = 200, **extra: Any) -> Envelope:
    return Envelope({"status": status, "message": message, "data": data, **extra})


def failure(
    status: int, error: str, code: str | None = None, errors: dict | None = None, **extra: Any
) -> Envelope:
    body: dict[str, Any] = {"status": status, "error": error}
    if code is not None:
        body["code"] = code
        body["errors"] = errors or {}
    body.update(extra)
    return Envelope(body)


def ok(data: Any, message: str = "ok", status: int = 200, headers=None) -> Response:
    return Response(success(data, message, status), status=status, headers=headers)


def domain_error_body(exc: DomainError) -> Envelope:
    extra = {}
    records = getattr(exc, "records", None)
    if records is not None:
        extra["records"] = records
    return failure(exc.status, exc.message, exc.code, exc.extra, **extra)
