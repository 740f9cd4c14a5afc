"""Django's error pages for what never reaches a view: a request Django itself refuses
(a Host not in ALLOWED_HOSTS, a malformed header) answers the API's JSON envelope under
/api/, and Django's own page elsewhere."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from backoffice.api.envelope import failure
from backoffice.errors import BAD_REQUEST

API_PREFIX = "/api/"


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            failure(400, "Bad request: the server refused its host or headers.",
                    BAD_REQUEST),
            status=400,
        )
    return defaults.bad_request(request, exception)
