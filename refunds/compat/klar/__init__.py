"""Dialect: Klar's refunds upload (docs/compat-klar.md).

    POST /compat/klar/{version}/refunds/validate   200 {"status": "VALID"}, or 400 [errors]
    POST /compat/klar/{version}/refunds/json       201, empty body
    GET  /compat/klar/refunds/status               {"total", "lastBatchCount",
                                                    "lastSuccess", "lastFailure"} as strings

A Klar Refund (`id`, `orderId`, `createdAt`, `updatedAt`, `lineItems[]` of `id` +
`refundedQuantity`) is read by a strict serializer whose refusals carry class-validator's
constraint names, translated to the native bulk record and handed to the same bulk
services as /api/v2/refunds/validate|json, under an import source of its own (`klar`:
Klar ids never clash with native ones). Their refusals (unknown order, quantity
exceeded) come back in Klar's error array too, pointing at the property.
"""

from django.urls import path

from refunds.api.urls import both

from .views import KlarImportView, KlarStatusView, KlarValidateView

urlpatterns = [
    *both("<str:version>/refunds/validate", KlarValidateView, "klar-refunds-validate"),
    *both("<str:version>/refunds/json", KlarImportView, "klar-refunds-json"),
    path("refunds/status", KlarStatusView.as_view(), name="klar-refunds-status"),
    path("refunds/status/", KlarStatusView.as_view(schema=None),
         name="klar-refunds-status-slash"),
]
