"""/compat/<system>/: each dialect under its seed's own paths."""

from django.urls import include, path

urlpatterns = [
    path("keepup/", include("refunds.compat.keepup")),
    path("orders-api/", include("refunds.compat.orders_api")),
    path("klar/", include("refunds.compat.klar")),
    path("nuweb/", include("refunds.compat.nuweb")),
]
