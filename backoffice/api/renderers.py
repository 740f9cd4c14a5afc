from __future__ import annotations

from rest_framework.renderers import JSONRenderer

from .envelope import Envelope, success


class EnvelopeRenderer(JSONRenderer):
    """Wraps any body not already in the envelope (views normally build it themselves)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and not isinstance(data, Envelope):
            status = response.status_code
            if status < 400:
                data = success(data, getattr(response, "message", "ok"), status)
            else:
                data = {"status": status, "error": "Request failed", "code": "error",
                        "errors": {}, "detail": data}
        return super().render(data, accepted_media_type, renderer_context)
