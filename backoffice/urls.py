from django.contrib import admin
from django.urls import include, path

from backoffice import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v2/", include("backoffice.api.urls")),
]
