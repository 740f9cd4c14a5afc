"""Request id: taken from the X-Request-ID header (set by the proxy) or made here, put in
the logging context for the whole request, and echoed on the response. Each request
starts with an empty log context (what it binds, e.g. its API key, ends with it)."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
