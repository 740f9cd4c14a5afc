"""One exception handler: domain errors, DRF's own, Http404, PermissionDenied and
anything unexpected all become the envelope; nothing answers with an HTML page."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from backoffice.errors import (
    ERROR,
    INVALID,
    MALFORMED,
    METHOD_NOT_ALLOWED,
    NOT_ACCEPTABLE,
    NOT_FOUND,
    PERMISSION_DENIED,
    SERVER_ERROR,
    THROTTLED,
    UNSUPPORTED_MEDIA_TYPE,
    DomainError,
)

from .envelope import domain_error_body, failure
from .strict import (
    UNKNOWN_FIELD,
    UnknownQueryParameters,
    iter_error_details,
    unknown_paths,
    unknown_sentence,
)

logger = logging.getLogger("backoffice.api")

AUTH_INVALID = "Authentication invalid"

_CODES = {
    exceptions.ParseError: MALFORMED,
    exceptions.PermissionDenied: PERMISSION_DENIED,
    exceptions.NotFound: NOT_FOUND,
    exceptions.MethodNotAllowed: METHOD_NOT_ALLOWED,
    exceptions.NotAcceptable: NOT_ACCEPTABLE,
    exceptions.UnsupportedMediaType: UNSUPPORTED_MEDIA_TYPE,
    exceptions.Throttled: THROTTLED,
}


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as {"items[1].quantity": ["..."]}."""
    out: dict[str, list[str]] = {}
    for path, error in iter_error_details(detail, prefix):
        out.setdefault(path, []).append(str(error))
    return out


def envelope_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(domain_error_body(exc), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response = drf_exception_handler(exc, context)
        status = response.status_code if response is not None else 401
        if status == 401:
            response.data = failure(401, AUTH_INVALID)
            return response

    if isinstance(exc, exceptions.APIException):
        response = drf_exception_handler(exc, context)  # headers: Retry-After, WWW-Authenticate
        status = response.status_code
        if isinstance(exc, exceptions.ValidationError):
            errors = flatten_errors(exc.detail)
            unknown = unknown_paths(exc.detail)
            if unknown:  # a request does what it names or nothing: say what it named wrong
                what = "query parameter" if isinstance(exc, UnknownQueryParameters) else "field"
                response.data = failure(400, unknown_sentence(unknown, what), UNKNOWN_FIELD,
                                        errors)
                return response
            first_path, first = next(iter(errors.items()), ("", ["Invalid request."]))
            message = f"{first_path}: {first[0]}" if first_path else first[0]
            response.data = failure(400, message, INVALID, errors)
        else:
            code = _CODES.get(type(exc)) or next(
                (c for cls, c in _CODES.items() if isinstance(exc, cls)), None
            ) or ERROR
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                code = PERMISSION_DENIED  # session without CSRF etc. answered 403
            response.data = failure(status, str(exc.detail), code)
        return response

    logger.exception("Unhandled error in API view %s", context.get("view"))
    set_rollback()
    response = Response(
        failure(500, "Internal server error; it has been logged.", SERVER_ERROR), status=500
    )
    # Logged just above, with its traceback: django.request's "Internal Server Error"
    # line (django.utils.log.log_response) would be the same error a second time.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response

