"""Dialect: the line-item refund API ("orders-api"; docs/compat-orders-api.md).

POST /compat/orders-api/connections/{connectionId}/orders/{orderId}/refunds

`connectionId` is the API key's own `connection_id` (another key's, or an unknown one,
is a 404); `orderId` a sale's id, number or external id; `items[].itemId` + `quantity`
name sale lines and units (empty or absent: everything that is left). Amounts are never
taken from the caller: a price or tax field is refused by name. One call to
`refund_create`, through the native idempotency store; the 201 answers the seed's
`connectionId`, `items` (with the amounts taken from the order), `batchId`,
`createdDate`, `returnedDate`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

from backoffice.api import strict
from backoffice.api.auth import request_api_key
from backoffice.api.fields import IdField
from backoffice.api.idempotency import Outcome
from backoffice.errors import AUTHENTICATION_INVALID, ERROR, UNKNOWN_FIELD, ConnectionNotFoundError
from backoffice.parsing import INT_MAX
from refunds.api.urls import both
from refunds.api.views import api_refund_create, idempotent
from refunds.models import Refund
from refunds.services import RefundOptions
from sales.api.views import IDEMPOTENCY_HEADER
from sales.selectors import with_sale_id

from .plain import DialectAutoSchema, PlainDialectView

TAG = "Dialect: line-item refund API (orders-api)"

# A key naming money (unitPrice, taxAmount, price, total, discount...): the seed says
# never to send one, so the refusal says why rather than "unknown field".
MONEY_KEY = re.compile(r"price|tax|amount|total|discount|cost", re.IGNORECASE)
MONEY_MESSAGE = ("Do not send price or tax fields: refund prices and tax amounts are "
                 "calculated from the order (its discounts included). Send only itemId and "
                 "quantity.")

# The seed's names for its error statuses.
STATUS_NAMES = {
    400: "Bad Request Error", 401: "Unauthorized Error", 403: "Forbidden Error",
    404: "Not Found Error", 405: "Method Not Allowed Error", 406: "Not Acceptable Error",
    409: "Conflict Error", 415: "Unsupported Media Type Error",
    422: "Unprocessable Entity Error", 429: "Too Many Requests Error",
    500: "Internal Server Error",
}
# Native field names (in the services' error paths) in the seed's words.
FIELD_NAMES = {"item_id": "itemId", "batch_id": "batchId", "returned_date": "returnedDate"}
_FIELD = re.compile(r"\b(" + "|".join(FIELD_NAMES) + r")\b")


class MoneyKeysRefused(strict.Serializer):
    """Strict input, with the seed's own reason for refusing a price or tax field."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except ValidationError as exc:
            if isinstance(exc.detail, dict):
                exc.detail = {
                    key: [ErrorDetail(MONEY_MESSAGE, code=UNKNOWN_FIELD)]
                    if MONEY_KEY.search(str(key)) and _is_unknown(errors) else errors
                    for key, errors in exc.detail.items()
                }
            raise


def _is_unknown(errors: Any) -> bool:
    return isinstance(errors, list) and any(
        getattr(e, "code", None) == UNKNOWN_FIELD for e in errors)


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 1},
                                {"type": "string", "pattern": "^[0-9]+$"}]})
class ItemIdField(IdField):
    """A sale line's id, as an integer or a string of digits."""


class OrdersApiItemSerializer(MoneyKeysRefused):
    itemId = ItemIdField(help_text="The sale line's id (`data.lines[].id` of the native "
                                   "sale), an integer or a string of digits.")
    quantity = serializers.IntegerField(min_value=1, max_value=INT_MAX,
                                        help_text="Units to give back.")


class OrdersApiRefundSerializer(MoneyKeysRefused):
    """The seed's request. Every other option takes the native default."""

    batchId = serializers.CharField(required=False, allow_blank=True, default="",
                                    max_length=128, help_text="Groups refunds (native "
                                                              "`batch_id`).")
    items = OrdersApiItemSerializer(
        many=True, required=False, allow_null=True, max_length=1000,  # type: ignore[call-arg]
        help_text="Empty or absent: everything that is left of the order.")
    returnedDate = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="When the return took effect (native `returned_date`).")

    def service_kwargs(self) -> dict[str, Any]:
        d = self.validated_data
        return {
            "items": [(i["itemId"], i["quantity"]) for i in d.get("items") or []],
            "options": RefundOptions(batch_id=d["batchId"], returned_at=d["returnedDate"]),
        }


class OrdersApiRefundItemSerializer(strict.Serializer):
    itemId = serializers.IntegerField(help_text="The sale line's id.")
    quantity = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="Net amount given back, minor units.")
    taxAmount = serializers.IntegerField(help_text="Tax given back, minor units.")
    totalAmount = serializers.IntegerField(help_text="amount + taxAmount.")


class OrdersApiRefundOutSerializer(strict.Serializer):
    """The 201: the seed's fields, then this product's additions (id, orderId, currency,
    totalAmount)."""

    connectionId = serializers.UUIDField()
    items = OrdersApiRefundItemSerializer(many=True)
    batchId = serializers.CharField()
    createdDate = serializers.DateTimeField()
    returnedDate = serializers.DateTimeField(
        help_text="returnedDate as sent, else when the refund was created.")
    id = serializers.IntegerField(help_text="The refund's id (GET /api/v2/refunds/{id}/).")
    orderId = serializers.CharField(help_text="The orderId of the path, as sent.")
    currency = serializers.CharField()
    totalAmount = serializers.IntegerField(
        help_text="Everything given back (lines, tax, and fees when the refund empties the "
                  "order), minor units.")


class OrdersApiErrorSerializer(strict.Serializer):
    status = serializers.IntegerField()
    error = serializers.CharField(help_text='The seed\'s name for the status, e.g. "Not '
                                            'Found Error".')
    code = serializers.CharField(help_text="Stable machine code (the native API's).")
    message = serializers.CharField(help_text="What went wrong, in a sentence.")
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Field errors keyed by the request\'s path, e.g. "items[0].quantity".')


def render_refund(refund: Refund, *, connection_id: uuid.UUID, order_id: str,
                  lines: list | None = None) -> dict:
    """`lines`: the refund's lines as just written (RefundResult.lines), else read."""
    when = serializers.DateTimeField()
    return {
        "connectionId": str(connection_id),
        "items": [
            {"itemId": line.sale_line_id, "quantity": line.quantity, "amount": line.amount,
             "taxAmount": line.tax_amount, "totalAmount": line.amount + line.tax_amount}
            for line in (refund.lines.all() if lines is None else lines)
        ],
        "batchId": refund.batch_id,
        "createdDate": when.to_representation(refund.created_at),
        "returnedDate": when.to_representation(refund.returned_at or refund.created_at),
        "id": refund.pk,
        "orderId": order_id,
        "currency": refund.currency,
        "totalAmount": refund.total,
    }


CONNECTION_ID = OpenApiParameter(
    "connectionId", str, OpenApiParameter.PATH,
    description="Your API key's connection id (printed by `manage.py create_api_key`, "
                "shown in the admin's API key page).")
ORDER_ID = OpenApiParameter("orderId", str, OpenApiParameter.PATH,
                            description="The order: a sale's id, number or external id.")


class OrdersApiRefundView(PlainDialectView):
    """Create a refund against an order, line by line (or everything that is left)."""

    dialect = "orders-api"
    openapi_tag = TAG
    required_permissions = {"*": ["refunds.add_refund"]}

    def error_schema(self, auto_schema: DialectAutoSchema, code: str) -> dict:
        return auto_schema.resolve_serializer(OrdersApiErrorSerializer, "response").ref

    def error_body(self, envelope: dict[str, Any], status: int) -> dict[str, Any]:
        errors = {_FIELD.sub(lambda m: FIELD_NAMES[m[1]], path): messages
                  for path, messages in (envelope.get("errors") or {}).items()}
        money = [path for path, messages in errors.items() if MONEY_MESSAGE in messages]
        message = (f"{', '.join(money)}: {MONEY_MESSAGE} Nothing was done." if money
                   else _FIELD.sub(lambda m: FIELD_NAMES[m[1]], envelope["error"]))
        return {"status": status, "error": STATUS_NAMES.get(status, "Error"),
                "code": envelope.get("code") or (AUTHENTICATION_INVALID if status == 401
                                                 else ERROR),
                "message": message, "errors": errors}

    @extend_schema(
        operation_id="orders_api_refund_create", summary="Refund order (line-item refund API)",
        request=OrdersApiRefundSerializer, parameters=[CONNECTION_ID, ORDER_ID,
                                                       IDEMPOTENCY_HEADER],
        responses={201: OrdersApiRefundOutSerializer},
    )
    def post(self, request, connectionId: str, orderId: str):  # noqa: N803 - the seed's names
        connection = connection_of(request, connectionId)
        ser = OrdersApiRefundSerializer(data=request.data)
        ser.is_valid(raise_exception=True)

        def work():
            result = with_sale_id(orderId, lambda sale_id: api_refund_create(
                request, sale_id=sale_id, **ser.service_kwargs(),
            ))
            body = render_refund(result.refund, connection_id=connection, order_id=orderId,
                                 lines=None if result.replayed else result.lines)
            return Outcome(201, body, refund=result.refund)

        return idempotent(request, work)


def connection_of(request, connection_id: str) -> uuid.UUID:
    """The connection the path names, if it is the requesting key's own; else a 404 that
    does not say whether it belongs to another key."""
    api_key = request_api_key(request)
    try:
        wanted = uuid.UUID(connection_id)
    except ValueError:
        wanted = None
    if api_key is None or wanted != api_key.connection_id:
        raise ConnectionNotFoundError(
            f"No connection {connection_id!r} for this API key: use the connection id "
            "printed by create_api_key (or shown on the key's admin page).",
        )
    return wanted


urlpatterns = [
    *both("connections/<str:connectionId>/orders/<str:orderId>/refunds",
          OrdersApiRefundView, "orders-api-refund"),
]
