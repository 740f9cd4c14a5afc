"""/api/v2/: the apps' endpoints, the OpenAPI schema and its docs (assets served locally)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

app_name = "api"

urlpatterns = [
    path("", include("sales.api.urls")),
    path("", include("refunds.api.urls")),
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]),
        name="schema",
    ),
    path("docs/", SpectacularSwaggerView.as_view(
        url_name="api:schema", permission_classes=[AllowAny], authentication_classes=[]
    ), name="docs"),
]
