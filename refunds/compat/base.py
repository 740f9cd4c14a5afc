"""What every dialect view shares: the native plumbing, the dialect's own error shape."""

from __future__ import annotations

from typing import Any

from backoffice.api import strict


class DialectView(strict.APIView):
    """A dialect's endpoint. Authentication, permissions (`required_permissions`),
    throttling, logging and strict query parameters are the native API's; errors are
    first rendered in the native envelope (`{"status", "error", "code", "errors"}`) by
    the one exception handler, then reshaped by `error_body` into the dialect's own."""

    dialect = ""

    def error_body(self, envelope: dict[str, Any], status: int) -> Any:
        """The dialect's error body, from the native envelope. Default: unchanged."""
        return envelope

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(response.data, dict) and "error" in response.data:
            response.data = self.error_body(response.data, response.status_code)
        return response
