"""Dialect: Nuweb (docs/compat-nuweb.md).

    POST /compat/nuweb/v1/orders/refund
    {"orderId": 1, "restock": true, "refundProcessingFee": true, "refundResellerFee": true,
     "notifyCustomer": true, "online": true}
    → 200 {"currencyId": 826, "currencySymbol": "£", "currencyCode": "GBP",
           "refundValue": 10403, "order": {...the sale...}}

Nuweb refunds an order in full (what remains of it), or cancels it (`type:
cancellation`): `refund_create` with no items, or `sale_cancel`, as the native
`POST /api/v2/orders/refund` and `PUT /api/v2/sales/cancel/{id}` call them. Nuweb's own
defaults: every flag true when absent (so the customer is alerted unless
`notifyCustomer` is false). `uuid` is the native idempotency key. `refundSplits` names a
payment method; it is translated to the sale's payments of that method. Errors:
`{"message", "code", "errors"}` with the native HTTP statuses and codes.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from backoffice.api import strict
from backoffice.api.fields import IdOrExternalIdField, MoneyField, YesNoBooleanField
from backoffice.api.idempotency import Outcome
from backoffice.errors import ERROR, UNAUTHENTICATED, UnknownPaymentError
from backoffice.money import currency_symbol, largest_remainder
from refunds.api.views import api_refund_create, api_sale_cancel, idempotent, respond
from refunds.models import RefundType
from refunds.services import RefundOptions
from sales.api.serializers import SaleSerializer
from sales.api.views import IDEMPOTENCY_HEADER, render_sale
from sales.models import Payment, PaymentMethod
from sales.selectors import sale_resolve_id

from .base import BearerKeyAuthentication, DialectView

TAG = "Nuweb"
CANCELLATION = "cancellation"

# currencyId: the ISO 4217 numeric code of the sale's currency (826 for GBP). Nuweb's own
# ids are its database's (its sample shows 1 for GBP); a client that needs the currency
# reads currencyCode. 0: a currency not in this table.
ISO_4217_NUMERIC = {
    "AED": 784, "AUD": 36, "BHD": 48, "BIF": 108, "BRL": 986, "CAD": 124, "CHF": 756,
    "CLP": 152, "CNY": 156, "CZK": 203, "DJF": 262, "DKK": 208, "EUR": 978, "GBP": 826,
    "GNF": 324, "HKD": 344, "HUF": 348, "ILS": 376, "INR": 356, "IQD": 368, "ISK": 352,
    "JOD": 400, "JPY": 392, "KMF": 174, "KRW": 410, "KWD": 414, "LYD": 434, "MXN": 484,
    "NOK": 578, "NZD": 554, "OMR": 512, "PLN": 985, "PYG": 600, "RON": 946, "RWF": 646,
    "SEK": 752, "SGD": 702, "TND": 788, "TRY": 949, "UGX": 800, "USD": 840, "VND": 704,
    "VUV": 548, "XAF": 950, "XOF": 952, "XPF": 953, "ZAR": 710,
}


def nuweb_currency_id(currency: str) -> int:
    return ISO_4217_NUMERIC.get(currency.upper(), 0)


class NuwebRefundSplitSerializer(strict.Serializer):
    """One of `refundSplits`: how much goes back to one payment method."""

    paymentMethod = serializers.CharField(
        max_length=32, help_text="The payment method to refund to: "
                                 f"{', '.join(PaymentMethod.values)}.")
    amount = MoneyField(min_value=0, max_value=10**13,
                        help_text="How much goes back to it, in minor units.")


class NuwebRefundRequestSerializer(strict.Serializer):
    """Nuweb's Refund Order body. Every boolean defaults to true, as Nuweb's document says."""

    orderId = IdOrExternalIdField(
        max_length=128, help_text="The order: a sale's id, number or external id (basket "
                                  "ids and order ids alike).")
    restock = YesNoBooleanField(required=False, default=True)
    refundProcessingFee = YesNoBooleanField(required=False, default=True)
    refundResellerFee = YesNoBooleanField(required=False, default=True)
    notifyCustomer = YesNoBooleanField(required=False, default=True)
    online = YesNoBooleanField(
        required=False, default=True,
        help_text="Back through the payment's gateway; offline when it has none or the "
                  "amount is zero. Ignored for balance_refund and cancellation.")
    type = serializers.ChoiceField(
        choices=[RefundType.REFUND, RefundType.BALANCE_REFUND, CANCELLATION],
        default=RefundType.REFUND)
    uuid = serializers.CharField(
        required=False, max_length=255,
        help_text="Idempotency key: the same uuid and body return the first answer. "
                  "Ignored for cancellations.")
    refundSplits = NuwebRefundSplitSerializer(  # type: ignore[call-arg]
        many=True, required=False, max_length=100,
        help_text="Amount per payment method; they must add up to the refund. Default: "
                  "in proportion to each payment.")

    def validate_refundSplits(self, value):
        methods = [s["paymentMethod"] for s in value]
        if len(methods) != len(set(methods)):
            raise serializers.ValidationError("A payment method is named twice.")
        return value

    def validate(self, attrs):
        if attrs["type"] == CANCELLATION:
            # A cancellation gives back every fee and each payment in full: a request that
            # asks otherwise is refused rather than done differently.
            errors = {name: ["A cancellation gives back every fee; send a refund instead."]
                      for name in ("refundProcessingFee", "refundResellerFee")
                      if attrs[name] is False}
            if attrs.get("refundSplits"):
                errors["refundSplits"] = ["A cancellation gives back each payment in full."]
            if errors:
                raise serializers.ValidationError(errors)
        return attrs


def split_payments(sale_id: int, splits: list[dict]) -> tuple[dict[int, int], dict[int, int]]:
    """Nuweb's amount per payment method as the service's amount per payment, and which
    split each payment came from. One method, several payments: the amount is spread over
    them in proportion to their original amounts, each capped at what is left on it (the
    service's own rule for its default split); more than is left on them all goes to the
    first, which the service refuses (split_exceeds_payment)."""
    payments = list(Payment.objects.filter(sale_id=sale_id).order_by("pk")
                    .values_list("pk", "method", "amount", "refunded_amount"))
    amounts: dict[int, int] = {}
    origin: dict[int, int] = {}
    for i, split in enumerate(splits):
        mine = [p for p in payments if p[1] == split["paymentMethod"]]
        if not mine:
            raise UnknownPaymentError(
                f"The order has no {split['paymentMethod']} payment to refund to.",
                extra={f"refundSplits[{i}].paymentMethod": ["No payment of this method."]})
        left = [amount - refunded for _, _, amount, refunded in mine]
        if split["amount"] <= sum(left):
            parts = largest_remainder(split["amount"], [p[2] for p in mine], left)
        else:
            parts = [split["amount"]] + [0] * (len(mine) - 1)
        for payment, part in zip(mine, parts, strict=True):
            amounts[payment[0]] = part
            origin[payment[0]] = i
    return amounts, origin


class NuwebOrderRefundResponseSerializer(strict.Serializer):
    """Nuweb's answer to Refund Order."""

    currencyId = serializers.IntegerField(
        help_text="ISO 4217 numeric code of the currency (826: GBP); 0 if unknown.")
    currencySymbol = serializers.CharField()
    currencyCode = serializers.CharField()
    refundValue = MoneyField(help_text="What was given back, in minor units.")
    order = SaleSerializer(help_text="The order (sale) after the refund, as GET "
                                     "/api/v2/sales/{id}/ returns it.")

    class Meta:
        ref_name = "NuwebOrderRefundResponse"


class NuwebErrorSerializer(strict.Serializer):
    """Nuweb's error body (the native envelope's sentence, code and field errors)."""

    message = serializers.CharField(help_text="What went wrong, in a sentence.")
    code = serializers.CharField(help_text="Stable machine code (the native API's).")
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Field errors keyed by Nuweb\'s field path, e.g. "refundSplits[0].amount".')

    class Meta:
        ref_name = "NuwebError"


# The service names a split by its payment id; Nuweb sent a list of payment methods.
_SPLIT_KEY = re.compile(r"splits\[(\d+)\]")


class NuwebView(DialectView):
    dialect = "nuweb"
    authentication_classes = [BearerKeyAuthentication]  # Nuweb sends Bearer only
    renderer_classes = [JSONRenderer]
    error_serializer = NuwebErrorSerializer
    split_origin: dict[int, int] = {}

    def error_body(self, envelope: dict[str, Any], status: int) -> dict[str, Any]:
        errors: dict[str, list] = {}
        for key, messages in (envelope.get("errors") or {}).items():
            errors.setdefault(self.nuweb_path(key), []).extend(messages)
        code = envelope.get("code") or (UNAUTHENTICATED if status == 401 else ERROR)
        return {"message": envelope["error"], "code": code, "errors": errors}

    def nuweb_path(self, key: str) -> str:
        """A native error path in Nuweb's words."""
        match = _SPLIT_KEY.fullmatch(key)
        if match and int(match[1]) in self.split_origin:
            return f"refundSplits[{self.split_origin[int(match[1])]}].amount"
        if key == "splits":
            return "refundSplits"
        if key == "Idempotency-Key" and "HTTP_IDEMPOTENCY_KEY" not in self.request.META:
            return "uuid"
        return key


SAMPLE = {"orderId": 1, "restock": True, "refundProcessingFee": True,
          "refundResellerFee": True, "notifyCustomer": True, "online": True}


class NuwebOrderRefundView(NuwebView):
    """POST /compat/nuweb/v1/orders/refund."""

    def get_required_permissions(self, request) -> list[str]:
        data = request.data if isinstance(request.data, dict) else {}
        return ["sales.cancel_sale" if data.get("type") == CANCELLATION
                else "refunds.add_refund"]

    @extend_schema(
        tags=[TAG], summary="Nuweb: refund (or cancel) an order",
        description="Nuweb's Refund Order over the native services: all that remains of "
                    "the order is refunded (`refund`, `balance_refund`), or the order is "
                    "cancelled (`cancellation`). Needs `refunds.add_refund` "
                    "(`sales.cancel_sale` for a cancellation).",
        request=NuwebRefundRequestSerializer, parameters=[IDEMPOTENCY_HEADER],
        responses={200: NuwebOrderRefundResponseSerializer},
        examples=[OpenApiExample("Nuweb's sample", value=SAMPLE, request_only=True)],
    )
    def post(self, request):
        ser = NuwebRefundRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        sale_id = sale_resolve_id(d["orderId"])
        if d["type"] == CANCELLATION:
            # Nuweb ignores uuid for cancellations; a cancel is idempotent by nature.
            result = api_sale_cancel(request, sale_id=sale_id, restock=d["restock"],
                                     alert_customer=d["notifyCustomer"])
            refunded = result.refund.total if result.refund else 0
            return respond(nuweb_outcome(request, sale_id, refunded))
        splits = None
        if d.get("refundSplits"):
            splits, self.split_origin = split_payments(sale_id, d["refundSplits"])
        options = RefundOptions(
            type=d["type"], restock=d["restock"], refund_processing_fee=d["refundProcessingFee"],
            refund_reseller_fee=d["refundResellerFee"], alert_customer=d["notifyCustomer"],
            online=d["online"],
        )

        def work():
            refund = api_refund_create(request, sale_id=sale_id, items=None, options=options,
                                       splits=splits).refund
            return nuweb_outcome(request, sale_id, refund.total, refund)

        return idempotent(request, work)


def nuweb_outcome(request, sale_id: int, refund_value: int, refund=None) -> Outcome:
    """Nuweb's answer: the currency, what was given back, the order as it now is."""
    order = render_sale(sale_id, request=request)
    currency = order["currency"]
    return Outcome(200, {
        "currencyId": nuweb_currency_id(currency),
        "currencySymbol": currency_symbol(currency),
        "currencyCode": currency,
        "refundValue": refund_value,
        "order": order,
    }, refund=refund)


urlpatterns = [
    path("v1/orders/refund", NuwebOrderRefundView.as_view(), name="compat-nuweb-refund"),
]
