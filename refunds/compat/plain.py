"""Dialects that answer in their own plain JSON, not in the native envelope.

`PlainDialectView` renders bodies as the dialect sends them (no `{status, message,
data}` around them), documents them the same way in the OpenAPI schema, under the
dialect's own tag, with every error in the dialect's own shape (`error_schema`).
"""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer

from backoffice.api.schema import EnvelopeAutoSchema

from .base import DialectView


class DialectAutoSchema(EnvelopeAutoSchema):
    """Success bodies as they are; errors as the view's `error_schema(code)`; the
    view's `openapi_tag` (SCHEMA_PATH_PREFIX is /api/v2, so /compat/ paths would get no
    tag of their own)."""

    def error_schema(self, code: str) -> dict:
        return self.view.error_schema(self, code)  # type: ignore[attr-defined]

    def get_tags(self) -> list[str]:
        return [self.view.openapi_tag]  # type: ignore[attr-defined]


class PlainDialectView(DialectView):
    renderer_classes = [JSONRenderer]
    schema = DialectAutoSchema()
    openapi_tag = ""

    def error_schema(self, auto_schema: DialectAutoSchema, code: str) -> dict:
        """The OpenAPI schema of this dialect's error body for status `code`."""
        raise NotImplementedError

    def handle_exception(self, exc):
        # error_body() sees the native envelope, whose messages are flattened; a dialect
        # that names its constraints by DRF's error codes reads them here.
        self.exception: Any = exc
        return super().handle_exception(exc)
