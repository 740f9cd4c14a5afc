"""drf-spectacular: every response documented in the envelope, every error listed."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from backoffice.api import strict

ERROR_DESCRIPTIONS = {
    "400": "Malformed request or invalid fields (`code` `invalid` / `malformed`).",
    "401": "No key, or a wrong, revoked or expired key.",
    "403": "The key's user lacks the permission.",
    "404": "Unknown sale (or other object).",
    "405": "Method not allowed.",
    "409": "Conflict: idempotency key in use, stale refund state, duplicate external id.",
    "413": "Batch too large (more than 1000 records).",
    "406": "Not acceptable (ask for application/json).",
    "415": "Unsupported media type (send JSON).",
    "422": "A business rule refused the request; see `code`.",
    "429": "Throttled; retry after `Retry-After` seconds.",
    "500": "Unexpected error (logged).",
}


class ErrorEnvelopeSerializer(strict.Serializer):
    status = serializers.IntegerField()
    error = serializers.CharField()
    code = serializers.CharField(required=False, help_text="Stable machine code.")
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text='Field errors keyed by path, e.g. "items[0].quantity".',
    )
    records = serializers.ListField(
        child=serializers.DictField(), required=False,
        help_text="Bulk imports: the records refused, with their index, id and errors.",
    )

    class Meta:
        ref_name = "ErrorEnvelope"


class EnvelopeAutoSchema(AutoSchema):
    """Success bodies wrapped as {status, message, data}; errors as ErrorEnvelope.

    The dialects (refunds/compat/) answer in other words: a view with `success_envelope =
    False` documents its success bodies as they are, and `error_schema(code)` (by default
    the view's `error_serializer`) says what an error body is."""

    def error_schema(self, code: str) -> dict:
        """The schema of an error body answered with status `code`."""
        serializer = getattr(self.view, "error_serializer", None) or ErrorEnvelopeSerializer
        return self.resolve_serializer(serializer, "response").ref

    def _get_response_for_code(self, serializer, status_code, media_types=None,
                               direction="response"):
        response = super()._get_response_for_code(serializer, status_code, media_types,
                                                  direction)
        if not getattr(self.view, "success_envelope", True) or not str(
                status_code).startswith("2"):
            return response
        for media in response.get("content", {}).values():
            schema = media.get("schema")
            if schema is None or _is_envelope(schema):
                continue
            media["schema"] = {
                "type": "object",
                "required": ["status", "message", "data"],
                "properties": {
                    "status": {"type": "integer", "example": int(status_code)},
                    "message": {"type": "string"},
                    "data": schema,
                },
            }
        return response

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = ["400", "401", "403", "404", "405", "406", "415", "429", "500"]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes += ["409", "422"]
        codes += [str(c) for c in getattr(self.view, "extra_error_codes", [])]
        for code in codes:
            if code in responses:
                continue
            entry = {
                "description": ERROR_DESCRIPTIONS.get(code, "Error"),
                "content": {"application/json": {"schema": self.error_schema(code)}},
            }
            if code == "429":
                entry["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"},
                                    "description": "Seconds to wait."}
                }
            responses[code] = entry
        return responses


def _is_envelope(schema: dict) -> bool:
    if "$ref" in schema and "/Paginated" in schema["$ref"]:
        return True
    props = schema.get("properties", {})
    return "status" in props and ("data" in props or "error" in props)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "backoffice.api.auth.ApiKeyAuthentication"
    name = ["BearerKey", "HeaderKey"]

    def get_security_requirement(self, auto_schema):
        return [{"BearerKey": []}, {"HeaderKey": []}]  # either one

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer",
             "description": "Authorization: Bearer <key> (from manage.py create_api_key)."},
            {"type": "apiKey", "in": "header", "name": "X-API-KEY"},
        ]


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "backoffice.api.auth.StaffSessionAuthentication"
    name = "StaffSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


def strict_request_bodies(result, generator, request, public):
    """Postprocessing hook: request bodies take no key beyond their fields
    (`additionalProperties: false`), as the API enforces (backoffice/api/strict.py)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
