"""Parse refund and cancel requests into the services' inputs; render refunds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backoffice.api import strict
from backoffice.api.fields import (
    IdField,
    IdOrExternalIdField,
    MoneyField,
    YesNoBooleanField,
)
from backoffice.errors import DomainError, UnknownPaymentError
from backoffice.parsing import ID_MAX, INT_MAX
from refunds.models import RefundReason, RefundType
from refunds.services import RefundOptions
from sales.models import CancelReason


class RefundLineOutSerializer(strict.Serializer):
    item_id = serializers.IntegerField(source="sale_line_id")
    quantity = serializers.IntegerField()
    amount = MoneyField()
    tax_amount = MoneyField()


class RefundPaymentOutSerializer(strict.Serializer):
    payment_id = serializers.IntegerField()
    amount = MoneyField()
    online = serializers.BooleanField()
    status = serializers.CharField()
    gateway_reference = serializers.CharField()


class FeesSerializer(strict.Serializer):
    processing = MoneyField()
    reseller = MoneyField()
    shipping = MoneyField()


class ApiKeyRefSerializer(strict.Serializer):
    """The API key a refund came through: its name and prefix (never the key itself)."""

    name = serializers.CharField()
    prefix = serializers.CharField()


class RefundSerializer(strict.Serializer):
    """A refund (data of the 201 and of GET /refunds/{id}/)."""

    id = serializers.IntegerField()
    sale_id = serializers.IntegerField()
    type = serializers.CharField()
    status = serializers.CharField()
    currency = serializers.CharField()
    lines = RefundLineOutSerializer(many=True)
    fees = serializers.SerializerMethodField()
    lines_amount = MoneyField()
    tax_amount = MoneyField()
    total = MoneyField()
    units = serializers.IntegerField()
    payments = RefundPaymentOutSerializer(many=True, source="allocations")
    restock = serializers.BooleanField()
    refund_processing_fee = serializers.BooleanField()
    refund_reseller_fee = serializers.BooleanField()
    refund_shipping = serializers.BooleanField()
    alert_customer = serializers.BooleanField()
    online = serializers.BooleanField()
    reason = serializers.CharField()
    note = serializers.CharField()
    batch_id = serializers.CharField()
    returned_date = serializers.DateTimeField(source="returned_at", allow_null=True)
    external_id = serializers.CharField(allow_null=True)
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField()  # type: ignore[assignment]
    created_by = serializers.SerializerMethodField()
    api_key = ApiKeyRefSerializer(
        allow_null=True, help_text="The API key it was made through (null: the admin, a "
                                   "command or the admin's import page)."
    )
    created_at = serializers.DateTimeField()
    settled_at = serializers.DateTimeField(allow_null=True)
    failure_reason = serializers.CharField()

    @extend_schema_field(FeesSerializer)
    def get_fees(self, obj) -> dict[str, int]:
        return {"processing": obj.processing_fee, "reseller": obj.reseller_fee,
                "shipping": obj.shipping_fee}

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.get_username() if obj.created_by_id else None


class ItemSerializer(strict.Serializer):
    item_id = IdField(help_text="The sale line's id (`data.lines[].id` of the sale).")
    quantity = serializers.IntegerField(min_value=1, max_value=INT_MAX)


class SplitSerializer(strict.Serializer):
    payment_id = IdField(help_text="The payment's id (`data.payments[].id` of the sale).")
    amount = MoneyField(min_value=0, max_value=10**13)


# How the refund service names a split in its errors: by the payment's id.
_SPLIT_KEY = re.compile(r"splits\[(\d+)\]")


class RefundRequestSerializer(strict.Serializer):
    """POST /sales/{id}/refunds/ (and /preview/): empty `items` = all that remains."""

    items = ItemSerializer(many=True, required=False, max_length=1000)  # type: ignore[call-arg]
    type = serializers.ChoiceField(
        choices=[RefundType.REFUND, RefundType.BALANCE_REFUND], default=RefundType.REFUND
    )
    restock = YesNoBooleanField(required=False, default=True)
    refund_processing_fee = YesNoBooleanField(required=False, allow_null=True, default=None)
    refund_reseller_fee = YesNoBooleanField(required=False, allow_null=True, default=None)
    refund_shipping = YesNoBooleanField(required=False, allow_null=True, default=None)
    alert_customer = YesNoBooleanField(required=False, default=False)
    online = YesNoBooleanField(required=False, default=True)
    splits = SplitSerializer(many=True, required=False, max_length=100)  # type: ignore[call-arg]
    batch_id = serializers.CharField(required=False, allow_blank=True, default="",
                                     max_length=128)
    returned_date = serializers.DateTimeField(
        required=False, allow_null=True, default=None, input_formats=["iso-8601", "%Y-%m-%d"]
    )
    reason = serializers.ChoiceField(choices=RefundReason.choices,
                                     default=RefundReason.REQUESTED_BY_CUSTOMER)
    note = serializers.CharField(required=False, allow_blank=True, default="",
                                 max_length=10_000)
    uuid = serializers.CharField(required=False, max_length=255,
                                 help_text="Idempotency key (or the Idempotency-Key header).")
    expected_refunded_amount = MoneyField(
        required=False, allow_null=True, default=None, min_value=0, max_value=ID_MAX,
        help_text="What you believe was refunded so far; a stale value is a 409.",
    )

    def validate_splits(self, value):
        ids = [s["payment_id"] for s in value]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("A payment is named twice.")
        return value

    def service_kwargs(self) -> dict:
        d = self.validated_data
        return {
            "items": [(i["item_id"], i["quantity"]) for i in d.get("items", [])],
            "options": RefundOptions(
                type=d["type"], restock=d["restock"],
                refund_processing_fee=d["refund_processing_fee"],
                refund_reseller_fee=d["refund_reseller_fee"],
                refund_shipping=d["refund_shipping"], alert_customer=d["alert_customer"],
                online=d["online"], reason=d["reason"], note=d["note"],
                batch_id=d["batch_id"], returned_at=d["returned_date"],
            ),
            "splits": {s["payment_id"]: s["amount"] for s in d["splits"]}
            if d.get("splits") else None,
            "expected_refunded_amount": d["expected_refunded_amount"],
        }

    @contextmanager
    def request_paths(self) -> Iterator[None]:
        """Around the service call: its errors keyed by the request's field paths. The
        service names a split by its payment id (`splits[<payment id>]`); the request sent
        a list, so the caller reads `splits[<index>].payment_id` (an unknown payment) or
        `splits[<index>].amount` (anything wrong with the amount)."""
        try:
            yield
        except DomainError as exc:
            if exc.extra:
                exc.extra = self._split_paths(exc)
            raise

    def _split_paths(self, exc: DomainError) -> dict:
        splits = self.validated_data.get("splits") or []
        index = {s["payment_id"]: i for i, s in enumerate(splits)}
        field = "payment_id" if isinstance(exc, UnknownPaymentError) else "amount"
        out: dict = {}
        for key, messages in exc.extra.items():
            match = _SPLIT_KEY.fullmatch(key)
            if match and int(match[1]) in index:
                key = f"splits[{index[int(match[1])]}].{field}"
            out.setdefault(key, []).extend(messages)
        return out


class OrderRefundSerializer(RefundRequestSerializer):
    """POST /orders/refund: the refund addressed by `order_id` (an id or external id)."""

    order_id = IdOrExternalIdField(max_length=128)


class FullRefundSerializer(strict.Serializer):
    """PUT /sales/refund/{id}: everything that remains."""

    alert_customer = YesNoBooleanField(required=False, default=False)
    restock = YesNoBooleanField(required=False, default=True)
    online = YesNoBooleanField(required=False, default=True)
    type = serializers.ChoiceField(
        choices=[RefundType.REFUND, RefundType.BALANCE_REFUND], default=RefundType.REFUND
    )
    reason = serializers.ChoiceField(choices=RefundReason.choices,
                                     default=RefundReason.REQUESTED_BY_CUSTOMER)
    note = serializers.CharField(required=False, allow_blank=True, default="",
                                 max_length=10_000)
    batch_id = serializers.CharField(required=False, allow_blank=True, default="",
                                     max_length=128)
    uuid = serializers.CharField(required=False, max_length=255)
    expected_refunded_amount = MoneyField(required=False, allow_null=True, default=None,
                                          min_value=0, max_value=ID_MAX)

    def service_kwargs(self) -> dict:
        d = self.validated_data
        return {
            "items": None,
            "options": RefundOptions(
                type=d["type"], restock=d["restock"], alert_customer=d["alert_customer"],
                online=d["online"], reason=d["reason"], note=d["note"], batch_id=d["batch_id"],
            ),
            "expected_refunded_amount": d["expected_refunded_amount"],
        }


class CancelSerializer(strict.Serializer):
    alert_customer = YesNoBooleanField(required=False, default=False)
    reason = serializers.ChoiceField(choices=CancelReason.choices, default=CancelReason.OTHER)
    restock = YesNoBooleanField(required=False, default=True)
    note = serializers.CharField(required=False, allow_blank=True, default="",
                                 max_length=10_000, help_text="Staff note; never shown.")
    uuid = serializers.CharField(required=False, max_length=255)


class PlannedLineSerializer(strict.Serializer):
    item_id = serializers.IntegerField(source="line.pk")
    sku = serializers.CharField(source="line.sku")
    description = serializers.CharField(source="line.description")
    quantity = serializers.IntegerField()
    amount = MoneyField()
    tax_amount = MoneyField()
    total = MoneyField()


class PlannedAllocationSerializer(strict.Serializer):
    payment_id = serializers.IntegerField(source="payment.pk")
    method = serializers.CharField(source="payment.method")
    amount = MoneyField()
    online = serializers.BooleanField()


class RefundPreviewSerializer(strict.Serializer):
    """What a refund would give back, line by line, with the split. Nothing written."""

    sale_id = serializers.IntegerField(source="sale.pk")
    currency = serializers.CharField(source="sale.currency")
    type = serializers.CharField(source="options.type")
    lines = PlannedLineSerializer(many=True)
    fees = serializers.SerializerMethodField()
    lines_amount = MoneyField()
    tax_amount = MoneyField()
    total = MoneyField()
    units = serializers.IntegerField()
    payments = PlannedAllocationSerializer(many=True, source="allocations")
    online = serializers.BooleanField()
    empties_sale = serializers.BooleanField()
    restock = serializers.BooleanField(source="options.restock")
    refund_processing_fee = serializers.BooleanField(source="options.refund_processing_fee")
    refund_reseller_fee = serializers.BooleanField(source="options.refund_reseller_fee")
    refund_shipping = serializers.BooleanField(source="options.refund_shipping")
    warnings = serializers.ListField(child=serializers.CharField())

    @extend_schema_field(FeesSerializer)
    def get_fees(self, plan) -> dict[str, int]:
        return {"processing": plan.processing_fee, "reseller": plan.reseller_fee,
                "shipping": plan.shipping_fee}


class BulkLineItemSerializer(strict.Serializer):
    item_id = IdField(help_text="The sale line's id (`data.lines[].id` of the sale).")
    quantity = serializers.IntegerField(min_value=1, max_value=INT_MAX)


@extend_schema_field({"oneOf": [{"type": "string", "minLength": 1, "maxLength": 128},
                                {"type": "integer"}]})
class BulkRecordIdField(serializers.CharField):
    """The record's id: a string of at most 128 characters, or an integer (read as text)."""


class BulkRecordSerializer(strict.Serializer):
    """One bulk refund record. Documentation only: refunds.services.bulk_import parses the
    batch itself (all records at once, errors keyed `[index].field`); this says what that
    parser accepts."""

    id = BulkRecordIdField(max_length=128, help_text="Your id for the refund: the upsert key.")
    sale_id = IdOrExternalIdField(required=False, allow_null=True,
                                  help_text="The sale's id (or, as a string, its number or "
                                            "external id).")
    order_id = IdOrExternalIdField(required=False, allow_null=True,
                                   help_text="Instead of sale_id: the sale's id, number or "
                                             "external id.")
    refunded_at = serializers.DateTimeField(required=False, allow_null=True)
    reason = serializers.ChoiceField(choices=RefundReason.choices, required=False,
                                     allow_blank=True, allow_null=True,
                                     help_text="Default `requested_by_customer`.")
    restock = YesNoBooleanField(required=False, default=True)
    note = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                 max_length=1000)
    batch_id = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                     max_length=128)
    line_items = BulkLineItemSerializer(many=True, help_text="Empty: withdraw the record.")


class BulkResultSerializer(strict.Serializer):
    result = serializers.CharField()
    count = serializers.IntegerField()
    created = serializers.IntegerField()
    replaced = serializers.IntegerField()
    withdrawn = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    import_id = serializers.IntegerField(allow_null=True)


class ImportStatusSerializer(strict.Serializer):
    total = serializers.IntegerField()
    last_batch_count = serializers.IntegerField()
    last_success = serializers.DateTimeField(allow_null=True)
    last_failure = serializers.DateTimeField(allow_null=True)
