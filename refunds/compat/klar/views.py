"""Klar's three endpoints over the native bulk services."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from backoffice.api import strict
from backoffice.api.auth import request_api_key
from backoffice.errors import UnknownVersionError
from refunds.services import (
    refunds_bulk_import,
    refunds_bulk_validate,
    refunds_import_refused,
    refunds_import_status,
)

from ..plain import DialectAutoSchema, PlainDialectView
from .errors import error_array, klar_problems, refused_batch
from .records import NOT_AN_ARRAY, KlarRefundSerializer, native_records

TAG = "Dialect: Klar refunds"
# Klar's record ids are upsert keys of their own (Refund.import_source), and its
# batches are recorded through a door of their own (RefundImport.source) for its status.
IMPORT_SOURCE = "klar"
DOOR = "klar"
# Klar's versions are a month and a year, e.g. 12.2022 (the first one published).
VERSION = re.compile(r"(0[1-9]|1[0-2])\.(20[0-9]{2})")
FIRST_VERSION = (2022, 12)


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
            raise UnknownVersionError(
                f"Unknown API version {version!r}: use MM.YYYY, 12.2022 or later.")


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
