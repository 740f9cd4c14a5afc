"""What every dialect view shares: the native plumbing, the dialect's own error shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from backoffice.api import strict
from backoffice.api.auth import ApiKeyAuthentication


class DialectView(strict.APIView):
    """A dialect's endpoint. Authentication, permissions (`required_permissions`),
    throttling, logging and strict query parameters are the native API's; errors are
    first rendered in the native envelope (`{"status", "error", "code", "errors"}`) by
    the one exception handler, then reshaped by `error_body` into the dialect's own."""

    dialect = ""
    # OpenAPI: a dialect's success bodies are its own, documented whole (not wrapped in
    # the native envelope; backoffice.api.schema.EnvelopeAutoSchema).
    success_envelope = False

    def error_body(self, envelope: dict[str, Any], status: int) -> Any:
        """The dialect's error body, from the native envelope. Default: unchanged."""
        return envelope

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(response.data, dict) and "error" in response.data:
            response.data = self.error_body(response.data, response.status_code)
        return response


class BearerKeyAuthentication(ApiKeyAuthentication):
    """The native API keys, sent only as `Authorization: Bearer <key>`: for a dialect whose
    seed documents no other header (an `X-API-KEY` alone is then a 401 there)."""

    def get_key(self, request) -> str | None:
        keyword, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return key.strip() if keyword.lower() == "bearer" and key.strip() else None


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "refunds.compat.base.BearerKeyAuthentication"
    name = "BearerKeyOnly"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "Authorization: Bearer <key>, the native API keys; the "
                               "dialects whose documents name no other header take only "
                               "this one."}
