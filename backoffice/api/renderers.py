from __future__ import annotations

import json

from rest_framework.renderers import JSONRenderer

from backoffice.errors import ERROR

from .envelope import Envelope, RawJSON, success


class EnvelopeRenderer(JSONRenderer):
    """Wraps any body not already in the envelope (views normally build it themselves)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and not isinstance(data, Envelope):
            status = response.status_code
            if status < 400:
                data = success(data, getattr(response, "message", "ok"), status)
            else:
                data = {"status": status, "error": "Request failed", "code": ERROR,
                        "errors": {}, "detail": data}
        if isinstance(data, Envelope) and isinstance(data.get("data"), RawJSON):
            head = {k: v for k, v in data.items() if k != "data"}
            text = json.dumps(head, ensure_ascii=self.ensure_ascii,
                              separators=(",", ":"))
            # '{"status":200,"message":"ok"' + ',"data":' + the document + the rest '}'
            return f'{text[:-1]},"data":{data["data"]}}}'.encode()
        return super().render(data, accepted_media_type, renderer_context)
