"""Klar's Refund record: read with class-validator's constraints, translated to the
native bulk record (refunds/services/bulk_import.py)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from backoffice.api import strict
from backoffice.parsing import ID_MAX, INT_MAX

# The largest Unix time a date holds (9999-12-31T23:59:59Z).
MAX_UNIX_SECONDS = 253402300799

# class-validator's messages, by constraint name (what Klar's validator answers).
MESSAGES = {
    "isString": "{p} must be a string",
    "isNotEmpty": "{p} should not be empty",
    "maxLength": "{p} must be shorter than or equal to {n} characters",
    "isNumber": "{p} must be a number conforming to the specified constraints",
    "isInt": "{p} must be an integer number",
    "isNumberString": "{p} must be a number string",
    "min": "{p} must not be less than {n}",
    "max": "{p} must not be greater than {n}",
    "isArray": "{p} must be an array",
    "nestedValidation": "nested property {p} must be either object or array",
    "whitelistValidation": "property {p} should not exist",
}
NOT_AN_ARRAY = "Send a JSON array of up to 1000 Refund objects."


def refusal(name: str, constraint: str, **values: Any) -> ValidationError:
    return ValidationError([ErrorDetail(MESSAGES[constraint].format(p=name, **values),
                                        code=constraint)])


class KlarField(serializers.Field):
    """A field whose refusals are class-validator's: a missing or null value breaks the
    field's own type constraint (as `@IsNumber()` does on undefined), as the seed's
    `"value": null ... "isNumber"` shows."""

    constraint = "isString"

    def refuse(self, constraint: str, **values: Any) -> ValidationError:
        return refusal(self.field_name or "", constraint, **values)

    def validate_empty_values(self, data):
        if (data is empty and self.required) or (data is None and not self.allow_null):
            raise self.refuse(self.constraint)
        return super().validate_empty_values(data)

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 128})
class KlarTextField(KlarField):
    """A string (an integer is read as text) of 1 to 128 characters."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        if not isinstance(data, str):
            raise self.refuse("isString")
        if not data.strip():
            raise self.refuse("isNotEmpty")
        if len(data) > 128:
            raise self.refuse("maxLength", n=128)
        return data


class KlarNumberField(KlarField):
    constraint = "isNumber"

    def number(self, data) -> int | float:
        if isinstance(data, bool) or not isinstance(data, int | float) or (
                isinstance(data, float) and not math.isfinite(data)):
            raise self.refuse("isNumber")
        return data

    def in_range(self, value: int | float, low: int, high: int) -> None:
        if value < low:
            raise self.refuse("min", n=low)
        if value > high:
            raise self.refuse("max", n=high)


@extend_schema_field({"type": "number", "minimum": 1, "maximum": MAX_UNIX_SECONDS})
class KlarUnixSecondsField(KlarNumberField):
    """Unix time in seconds: a date (UTC). Klar refuses 0: leave the field out instead."""

    def to_internal_value(self, data):
        value = self.number(data)
        self.in_range(value, 1, MAX_UNIX_SECONDS)
        return datetime.fromtimestamp(value, UTC)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": INT_MAX})
class KlarQuantityField(KlarNumberField):
    def to_internal_value(self, data):
        value = self.number(data)
        if value != int(value):
            raise self.refuse("isInt")
        self.in_range(value, 1, INT_MAX)
        return int(value)


@extend_schema_field({"type": "string", "pattern": "^[0-9]+$"})
class KlarLineIdField(KlarField):
    """The order line's id: this product's sale line id, as a string (or an integer)."""

    constraint = "isNumberString"

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str) or (
                isinstance(data, str) and not re.fullmatch(r"[0-9]{1,20}", data.strip())):
            raise self.refuse("isNumberString")
        value = int(data)
        if not 1 <= value <= ID_MAX:
            raise self.refuse("min" if value < 1 else "max", n=1 if value < 1 else ID_MAX)
        return value


class KlarArray(serializers.ListSerializer):
    """`lineItems`: an array (missing, null or anything else breaks `isArray`)."""

    def validate_empty_values(self, data):
        if data is empty or data is None:
            raise refusal(self.field_name, "isArray")
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise refusal(self.field_name, "isArray")
        return super().to_internal_value(data)


class KlarObject(strict.Serializer):
    """An object (anything else, null included, breaks `nestedValidation`, named by the
    array it is in) taking only its fields."""

    def not_an_object(self) -> ValidationError:
        name = getattr(self.parent, "field_name", "") or "refunds"
        return ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail(
            MESSAGES["nestedValidation"].format(p=name), code="nestedValidation")]})

    def validate_empty_values(self, data):
        if data is None or data is empty:
            raise self.not_an_object()
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise self.not_an_object()
        return super().to_internal_value(data)


class KlarLineItemSerializer(KlarObject):
    """A refunded line item: which order line, how many units."""

    id = KlarLineIdField(help_text="The order line's id: the sale line's id "
                                   "(`data.lines[].id` of the native sale), as a string.")
    refundedQuantity = KlarQuantityField(help_text="Units refunded (a whole number, 1 or "
                                                   "more).")

    class Meta:
        list_serializer_class = KlarArray


class KlarRefundSerializer(KlarObject):
    """Klar's Refund object."""

    id = KlarTextField(help_text="Your refund's id (≤ 128 characters): sending it again "
                                 "replaces the earlier version.")
    orderId = KlarTextField(help_text="The order: a sale's id, number or external id.")
    createdAt = KlarUnixSecondsField(required=False, allow_null=True,
                                     help_text="When the refund was made, Unix seconds "
                                               "(native `refunded_at`).")
    updatedAt = KlarUnixSecondsField(required=False, allow_null=True,
                                     help_text="When it last changed, Unix seconds: checked, "
                                               "not stored.")
    lineItems = KlarLineItemSerializer(many=True, help_text="The refunded line items; "
                                                            "`[]` withdraws the refund.")


def native_record(refund: dict[str, Any]) -> dict[str, Any]:
    """A valid Klar Refund as the native bulk record (refunds/services/bulk_import.py)."""
    created = refund.get("createdAt")
    return {
        "id": refund["id"],
        "order_id": refund["orderId"],
        "refunded_at": created.isoformat() if created else None,
        "line_items": [{"item_id": item["id"], "quantity": item["refundedQuantity"]}
                       for item in refund["lineItems"]],
    }


def native_records(data: Any) -> Any:
    """The native records for a Klar body (ValidationError with Klar's constraints if it
    is not one). A batch over the native limit is passed on unread: the service refuses
    it by its size (413) before it reads a record."""
    if isinstance(data, list) and len(data) > settings.BULK_IMPORT_MAX_RECORDS:
        return data
    ser = KlarRefundSerializer(data=data, many=True)
    ser.is_valid(raise_exception=True)
    return [native_record(r) for r in ser.validated_data]
