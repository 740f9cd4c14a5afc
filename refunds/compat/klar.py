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

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.fields import empty
from rest_framework.response import Response
from rest_framework.settings import api_settings

from backoffice.api import strict
from backoffice.api.auth import request_api_key
from backoffice.api.fields import ID_MAX, INT_MAX
from backoffice.errors import UNKNOWN_FIELD, NotFoundError
from refunds.api.urls import both
from refunds.services import (
    BulkRecordsInvalidError,
    refunds_bulk_import,
    refunds_bulk_validate,
    refunds_import_refused,
    refunds_import_status,
)

from .plain import DialectAutoSchema, PlainDialectView

TAG = "Dialect: Klar refunds"
# Klar's record ids are upsert keys of their own (Refund.import_source), and its
# batches are recorded through a door of their own (RefundImport.source) for its status.
IMPORT_SOURCE = "klar"
DOOR = "klar"

# Klar's versions are a month and a year, e.g. 12.2022 (the first one published).
VERSION = re.compile(r"(0[1-9]|1[0-2])\.(20[0-9]{2})")
FIRST_VERSION = (2022, 12)
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
# Native field names (the bulk service's error paths) in Klar's words, and the
# constraint a refusal by the service is reported under.
KLAR_NAMES = {"id": "id", "order_id": "orderId", "sale_id": "orderId",
              "refunded_at": "createdAt", "line_items": "lineItems", "item_id": "id",
              "quantity": "refundedQuantity"}
SERVICE_CONSTRAINTS = {"order_id": "orderExists", "sale_id": "orderExists",
                       "item_id": "lineItemExists", "quantity": "refundableQuantity"}
SERVICE_CONSTRAINT = "refundRule"
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


# The error array ------------------------------------------------------------------

Problem = tuple[int, tuple[str | int, ...], str, str]  # index, path, constraint, message


def record_errors(detail: Any) -> dict[int, Any] | None:
    """DRF's errors for a list of records, by index (a list with one entry per record,
    or a dict keyed by the refused ones' indexes); None: not errors of records."""
    if isinstance(detail, list) and all(isinstance(d, dict) for d in detail):
        return dict(enumerate(detail))
    if isinstance(detail, dict) and detail and all(isinstance(k, int) for k in detail):
        return dict(detail)
    return None


def serializer_problems(by_index: dict[int, Any]) -> Iterator[Problem]:
    """DRF's errors for the records, by index, as problems."""
    for index, errors in sorted(by_index.items()):
        if errors:
            for segments, error in _walk(errors, ()):
                code = getattr(error, "code", None) or "isValid"
                if code == UNKNOWN_FIELD:
                    name = str(segments[-1]) if segments else ""
                    yield index, segments, "whitelistValidation", MESSAGES[
                        "whitelistValidation"].format(p=name)
                else:
                    yield index, segments, code, str(error)


def _walk(detail: Any, segments: tuple) -> Iterator[tuple[tuple, Any]]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = segments if key == api_settings.NON_FIELD_ERRORS_KEY else (*segments, key)
            yield from _walk(value, inner)
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            if isinstance(value, dict | list):
                if value:
                    yield from _walk(value, (*segments, i))
            else:
                yield segments, value
    else:
        yield segments, detail


_PATH = re.compile(r"\[(\d+)\]|\.?([A-Za-z_]+)")


def service_problems(extra: dict[str, list[str]]) -> Iterator[Problem]:
    """The bulk service's errors (`[3].line_items[0].quantity`) in Klar's words."""
    for key, messages in extra.items():
        parts = [int(i) if i else name for i, name in _PATH.findall(key)]
        if not parts or not isinstance(parts[0], int):
            continue
        index, rest = parts[0], parts[1:]
        segments = tuple(KLAR_NAMES.get(p, p) if isinstance(p, str) else p for p in rest)
        leaf = next((p for p in reversed(rest) if isinstance(p, str)), "")
        constraint = SERVICE_CONSTRAINTS.get(leaf, SERVICE_CONSTRAINT) if rest else \
            SERVICE_CONSTRAINT
        for message in messages:
            yield index, segments, constraint, message


def error_array(records: Any, problems: Iterator[Problem]) -> list[dict[str, Any]]:
    """class-validator's ValidationError tree, one entry per refused record: `property`
    (the record's index, then the path's names and indexes), `value` (as sent),
    `target` (the Refund object the error belongs to, as the seed shows), `children`,
    and `constraints` ({name: message}) where a value broke one."""
    roots: dict[int, dict[str, Any]] = {}
    for index, segments, constraint, message in problems:
        record = records[index] if isinstance(records, list) and index < len(records) \
            else None
        node = roots.get(index)
        if node is None:
            node = roots[index] = _node(record, record, str(index))
        value = record
        for segment in segments:
            value = _get(value, segment)
            child = next((c for c in node["children"] if c["property"] == str(segment)), None)
            if child is None:
                child = _node(record, value, str(segment))
                node["children"].append(child)
            node = child
        node.setdefault("constraints", {})[constraint] = message
    return [roots[i] for i in sorted(roots)]


def _node(target: Any, value: Any, prop: str) -> dict[str, Any]:
    return {"target": target, "value": value, "property": prop, "children": []}


def _get(value: Any, segment: str | int) -> Any:
    if isinstance(segment, int):
        return value[segment] if isinstance(value, list) and segment < len(value) else None
    return value.get(segment) if isinstance(value, dict) else None


def klar_problems(exc: Any) -> Iterator[Problem] | None:
    """The problems an exception names record by record (None: not that kind)."""
    by_index = record_errors(exc.detail) if isinstance(exc, ValidationError) else None
    if by_index is not None:
        return serializer_problems(by_index)
    if isinstance(exc, BulkRecordsInvalidError):
        return service_problems(exc.extra)
    return None


def refused_batch(records: Any, exc: ValidationError) -> BulkRecordsInvalidError:
    """Klar's own refusal of a batch as the native error (for the import's record)."""
    problems = list(klar_problems(exc) or [])
    summary: dict[int, dict[str, list[str]]] = {}
    for index, segments, _, message in problems:
        name = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in segments)
        summary.setdefault(index, {}).setdefault(name.lstrip(".") or "record",
                                                 []).append(message)
    return BulkRecordsInvalidError(
        f"{len(summary)} record(s) refused, nothing written." if summary else NOT_AN_ARRAY,
        extra={}, records=[
            {"index": i, "id": records[i].get("id") if isinstance(records[i], dict) else None,
             "errors": errors} for i, errors in sorted(summary.items())])


# Views ----------------------------------------------------------------------------

NEST_ERROR = {
    "type": "object", "required": ["statusCode", "message", "error"],
    "properties": {"statusCode": {"type": "integer"}, "message": {"type": "string"},
                   "error": {"type": "string", "description": "The status's reason phrase."}},
}
VALIDATION_ERROR = {
    "type": "object", "required": ["value", "property", "children"],
    "properties": {
        "target": {"description": "The Refund object the error belongs to."},
        "value": {"description": "The value sent (null: missing)."},
        "property": {"type": "string",
                     "description": "The record's index, then a name or an index."},
        "children": {"type": "array", "items": {"type": "object"},
                     "description": "The errors inside this value (same shape)."},
        "constraints": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": 'e.g. {"isNumber": "refundedQuantity must be a '
                                       'number conforming to the specified constraints"}'},
    },
}
VERSION_PARAM = OpenApiParameter("version", str, OpenApiParameter.PATH,
                                 description="Klar's API version, e.g. 12.2022 (MM.YYYY).")


class KlarView(PlainDialectView):
    dialect = "klar"
    openapi_tag = TAG
    throttle_scope = "bulk"
    required_permissions = {"*": ["refunds.add_refund"]}
    extra_error_codes = [413]

    def error_schema(self, auto_schema: DialectAutoSchema, code: str) -> dict:
        if code == "400":
            return {"oneOf": [{"type": "array", "items": VALIDATION_ERROR}, NEST_ERROR]}
        return NEST_ERROR

    def error_body(self, envelope: dict[str, Any], status: int) -> Any:
        exc = getattr(self, "exception", None)
        problems = klar_problems(exc)
        if problems is not None:
            return error_array(self.request.data, problems)
        body_refused = isinstance(exc, ValidationError) and not isinstance(
            exc, strict.UnknownQueryParameters)  # not an array of records
        message = NOT_AN_ARRAY if body_refused else envelope["error"]
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        return {"statusCode": status, "message": message, "error": phrase}

    def check_version(self, version: str) -> None:
        match = VERSION.fullmatch(version)
        if match is None or (int(match[2]), int(match[1])) < FIRST_VERSION:
            raise NotFoundError(
                f"Unknown API version {version!r}: use MM.YYYY, 12.2022 or later.",
                code="unknown_version")


class KlarValidateView(KlarView):
    """Check up to 1000 Refund objects; writes nothing."""

    @extend_schema(
        operation_id="klar_refunds_validate", summary="Validate refunds (Klar)",
        request=KlarRefundSerializer(many=True), parameters=[VERSION_PARAM],
        responses={200: OpenApiResponse(response={
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["VALID"]}}},
            description="The batch is valid.")},
    )
    def post(self, request, version: str):
        self.check_version(version)
        refunds_bulk_validate(records=native_records(request.data),
                              import_source=IMPORT_SOURCE, actor=request.user)
        return Response({"status": "VALID"})


class KlarImportView(KlarView):
    """Create or replace up to 1000 Refund objects, all or nothing."""

    @extend_schema(
        operation_id="klar_refunds_json", summary="Upload refunds (Klar)",
        request=KlarRefundSerializer(many=True), parameters=[VERSION_PARAM],
        responses={201: OpenApiResponse(description="Uploaded; empty body.")},
    )
    def post(self, request, version: str):
        self.check_version(version)
        api_key = request_api_key(request)
        try:
            records = native_records(request.data)
        except ValidationError as exc:
            # A batch refused before the service is on the books too (lastFailure).
            refunds_import_refused(records=request.data, error=refused_batch(request.data, exc),
                                   actor=request.user, door=DOOR, api_key=api_key)
            raise
        refunds_bulk_import(records=records, import_source=IMPORT_SOURCE, actor=request.user,
                            door=DOOR, api_key=api_key)
        return Response(status=201)


def klar_time(value: datetime | None) -> str | None:
    """2023-03-11T12:13:31.193Z, as Klar writes it (None: never)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KlarStatusView(KlarView):
    """Figures of Klar's uploads, as strings."""

    throttle_scope = "key"
    required_permissions = {"GET": ["refunds.view_refund"]}
    extra_error_codes: list[int] = []

    @extend_schema(
        operation_id="klar_refunds_status", summary="Upload status (Klar)",
        responses={200: OpenApiResponse(response={
            "type": "object", "required": ["total", "lastBatchCount", "lastSuccess",
                                           "lastFailure"],
            "properties": {
                "total": {"type": "string", "example": "9",
                          "description": "Live refunds uploaded through Klar."},
                "lastBatchCount": {"type": "string", "example": "4"},
                "lastSuccess": {"type": "string", "nullable": True,
                                "example": "2023-03-11T12:13:31.193Z"},
                "lastFailure": {"type": "string", "nullable": True,
                                "example": "2023-03-11T09:06:50.321Z"},
            }}, description="The figures.")},
    )
    def get(self, request):
        status = refunds_import_status(import_source=IMPORT_SOURCE, door=DOOR)
        return Response({
            "total": str(status["total"]),
            "lastBatchCount": str(status["last_batch_count"]),
            "lastSuccess": klar_time(status["last_success"]),
            "lastFailure": klar_time(status["last_failure"]),
        })


urlpatterns = [
    *both("<str:version>/refunds/validate", KlarValidateView, "klar-refunds-validate"),
    *both("<str:version>/refunds/json", KlarImportView, "klar-refunds-json"),
    path("refunds/status", KlarStatusView.as_view(), name="klar-refunds-status"),
    path("refunds/status/", KlarStatusView.as_view(schema=None),
         name="klar-refunds-status-slash"),
]
