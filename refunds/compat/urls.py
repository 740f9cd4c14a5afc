"""/compat/<system>/: each dialect under its seed's own paths."""

from django.urls import include, path, re_path

from backoffice.api.urls import NoSuchEndpoint

urlpatterns = [
    path("keepup/", include("refunds.compat.keepup")),
    path("orders-api/", include("refunds.compat.orders_api")),
    path("klar/", include("refunds.compat.klar")),
    path("nuweb/", include("refunds.compat.nuweb")),
    re_path(r"^.*$", NoSuchEndpoint.as_view(), name="compat-not-found"),
]
