from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from backoffice import health

admin.site.site_header = f"{settings.SHOP_NAME} back office"
admin.site.site_title = f"{settings.SHOP_NAME} back office"
admin.site.index_title = "Sales, refunds and cancellations"

# A request Django refuses before any view (bad Host, ...): the envelope under /api/.
handler400 = "backoffice.views.bad_request"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v2/", include("backoffice.api.urls")),
    path("compat/", include("refunds.compat.urls")),
]
