"""Request id: taken from the X-Request-ID header (set by the proxy) or made here, put in
the logging context for the whole request, and echoed on the response. Each request
starts with an empty log context (what it binds, e.g. its API key, ends with it)."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.contrib.admin.views.main import ERROR_FLAG
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse

from .api.envelope import failure
from .errors import PAYLOAD_TOO_LARGE
from .logging import get_log_context, new_request_id, request_id_var, request_log_context

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only when it is short and plain, so it can't forge log lines.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """First in MIDDLEWARE: every log line of the request carries its id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            with request_log_context():
                try:
                    response = self.get_response(request)
                finally:
                    # Django logs a 4xx/5xx response after this returns: the log
                    # filter finds what the request bound (its API key) here.
                    request.log_context = get_log_context()  # type: ignore[attr-defined]
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


# Date-hierarchy parameters of the admin's lists; Django's own parsing lets a year past
# 9998 (or one that overflows a C int) through to a 500.
_DATE_PART = re.compile(r".*__(year|month|day)$")
_DATE_VALUE = re.compile(r"[0-9]{1,4}")


def odd_admin_query(params) -> bool:
    """A query string no admin list can mean: a NUL anywhere (PostgreSQL refuses it in
    text), or a date part that is not a small number (year 1..9998)."""
    for key, values in params.lists():
        if "\x00" in key or any("\x00" in v for v in values):
            return True
        if _DATE_PART.fullmatch(key):
            for value in values:
                if not _DATE_VALUE.fullmatch(value.strip()):
                    return True
                if key.endswith("__year") and not 1 <= int(value) <= 9998:
                    return True
    return False


class AdminOddInputMiddleware:
    """An admin page asked with a query string it can't mean is sent where Django sends
    any bad list lookup (`?e=1`: "invalid lookup"), instead of failing with a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/admin/") and odd_admin_query(request.GET):
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return self.get_response(request)


class ApiBodyLimitMiddleware:
    """An API request whose body is over settings.DATA_UPLOAD_MAX_MEMORY_SIZE is answered
    413 in the envelope before anything reads it (Django would raise RequestDataTooBig
    from inside the parser: a 500)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return JsonResponse(failure(
                    413, f"The request body is larger than {limit} bytes; send fewer "
                    "records per request.", PAYLOAD_TOO_LARGE), status=413)
        return self.get_response(request)
