"""/api/v2/: the apps' endpoints, the OpenAPI schema and its docs (assets served locally)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

app_name = "api"

urlpatterns = [
    path("", include("sales.api.urls")),
    path("", include("refunds.api.urls")),
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]),
        name="schema",
    ),
    # The split view serves Swagger UI's start-up script from this origin (?script), so
    # the docs run under the content security policy (no inline script).
    path("docs/", SpectacularSwaggerSplitView.as_view(
        url_name="api:schema", permission_classes=[AllowAny], authentication_classes=[]
    ), name="docs"),
]


class NoSuchEndpoint(APIView):
    """Any other path under /api/v2/ or /compat/: a JSON 404 in the envelope, never an
    HTML page."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    schema = None

    def _missing(self, request, *args, **kwargs):
        raise NotFound("No such API endpoint; see /api/v2/docs/.")

    get = post = put = patch = delete = _missing


urlpatterns.append(re_path(r"^.*$", NoSuchEndpoint.as_view(), name="not-found"))
