"""Dialect: Keepup (docs/compat-keepup.md).

    PUT|POST /compat/keepup/v2.0/sales/refund/{sale_id}   {"alert_customer": "yes"}
    PUT|POST /compat/keepup/v2.0/sales/cancel/{sale_id}   {"alert_customer": "yes"}

The native `PUT /api/v2/sales/refund/{id}` and `/sales/cancel/{id}` with Keepup's one
field and Keepup's bodies: `{"status": 200, "message": "sale refunded", "data":
{"status": "refunded"}}`, and errors in the envelope Keepup's 401 shows (`{"status",
"error"}`, plus the native `code` and `errors`). Idempotent by nature, as the native
calls: a sale already refunded (cancelled) answers 200 again and nothing more happens.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from backoffice.api import strict
from backoffice.api.envelope import success
from backoffice.api.fields import YesNoBooleanField
from backoffice.api.idempotency import Outcome
from backoffice.api.schema import ErrorEnvelopeSerializer
from refunds.api.views import api_sale_cancel, idempotent, refund_in_full
from refunds.services import RefundOptions
from sales.api.views import IDEMPOTENCY_HEADER
from sales.models import Sale
from sales.selectors import sale_resolve_id

from .base import BearerKeyAuthentication, DialectView

TAG = "Keepup"
SALE_ID = OpenApiParameter("sale_id", str, OpenApiParameter.PATH,
                           description="The sale's id (its number or external id also work).")


class KeepupSaleRequestSerializer(strict.Serializer):
    """Keepup's body for refund and cancel: one optional field."""

    alert_customer = YesNoBooleanField(
        required=False, default=False,
        help_text='Whether to alert the customer ("yes", "no"; true/false too). Default no.',
    )


class KeepupSaleStatusSerializer(strict.Serializer):
    """Keepup's `data`: the sale's status, nothing else."""

    status = serializers.CharField(help_text="The sale's status: `refunded`, `cancelled`.")


class KeepupSaleResponseSerializer(strict.Serializer):
    """Keepup's success body, exactly as its document shows it."""

    status = serializers.IntegerField(help_text="200")
    message = serializers.CharField(help_text="`sale refunded` or `sale cancelled`.")
    data = KeepupSaleStatusSerializer()  # type: ignore[assignment]

    class Meta:
        ref_name = "KeepupSaleResponse"


def keepup_body(sale_id: int, message: str) -> dict:
    """Keepup's success body: the sale's status after the call."""
    status = Sale.objects.values_list("status", flat=True).get(pk=sale_id)
    return success({"status": status}, message)


class KeepupView(DialectView):
    dialect = "keepup"
    authentication_classes = [BearerKeyAuthentication]  # Keepup sends Bearer only
    renderer_classes = [JSONRenderer]
    error_serializer = ErrorEnvelopeSerializer  # Keepup's error body is the native one

    def error_body(self, envelope, status):
        # Keepup's own: {"status": 401, "error": "Authentication invalid"}. The native
        # envelope is that shape, with `code` and `errors` added on every other error.
        return envelope

    def parse(self, request, sale_id: str) -> tuple[int, bool]:
        """The sale (id, number or external id) and alert_customer."""
        ser = KeepupSaleRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        return sale_resolve_id(sale_id), ser.validated_data["alert_customer"]


def _keepup_schema(summary: str, description: str):
    return extend_schema(
        tags=[TAG], summary=summary, description=description,
        request=KeepupSaleRequestSerializer, parameters=[SALE_ID, IDEMPOTENCY_HEADER],
        responses={200: KeepupSaleResponseSerializer},
    )


REFUND_DOC = ("Keepup's Refund Sale: refund all that remains of the sale (id, number or "
              "external id), as `PUT /api/v2/sales/refund/{ident}` does. Already refunded: "
              "200 again, nothing more.")
CANCEL_DOC = ("Keepup's Cancel Sale: cancel the sale, refunding what was paid and "
              "restocking, as `PUT /api/v2/sales/cancel/{ident}` does. Already cancelled: "
              "200 again, nothing more.")


class KeepupRefundView(KeepupView):
    """PUT|POST /compat/keepup/v2.0/sales/refund/{sale_id}."""

    required_permissions = {"*": ["refunds.add_refund"]}

    @_keepup_schema("Keepup: refund a sale", REFUND_DOC)
    def put(self, request, sale_id):
        ident, alert = self.parse(request, sale_id)

        def work():
            refund = refund_in_full(request, sale_id=ident, items=None,
                                    options=RefundOptions(alert_customer=alert))
            return Outcome(200, keepup_body(ident, "sale refunded"), refund=refund)

        return idempotent(request, work)

    @_keepup_schema("Keepup: refund a sale (POST, as Keepup's samples send)", REFUND_DOC)
    def post(self, request, sale_id):
        return self.put(request, sale_id)


class KeepupCancelView(KeepupView):
    """PUT|POST /compat/keepup/v2.0/sales/cancel/{sale_id}."""

    required_permissions = {"*": ["sales.cancel_sale"]}

    @_keepup_schema("Keepup: cancel a sale", CANCEL_DOC)
    def put(self, request, sale_id):
        ident, alert = self.parse(request, sale_id)

        def work():
            result = api_sale_cancel(request, sale_id=ident, alert_customer=alert)
            return Outcome(200, keepup_body(ident, "sale cancelled"), refund=result.refund)

        return idempotent(request, work)

    @_keepup_schema("Keepup: cancel a sale (POST, as Keepup's samples send)", CANCEL_DOC)
    def post(self, request, sale_id):
        return self.put(request, sale_id)


urlpatterns = [
    path("v2.0/sales/refund/<str:sale_id>", KeepupRefundView.as_view(),
         name="compat-keepup-refund"),
    path("v2.0/sales/cancel/<str:sale_id>", KeepupCancelView.as_view(),
         name="compat-keepup-cancel"),
]
