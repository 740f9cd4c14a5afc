"""The API's JSON parser: DRF's, plus a depth limit, so odd bodies never become a 500:
JSON nested deeper than MAX_DEPTH (or deep enough to exhaust Python's recursion) is a
400. (A body over settings.DATA_UPLOAD_MAX_MEMORY_SIZE is refused before it is read:
backoffice.middleware.ApiBodyLimitMiddleware.)"""

from __future__ import annotations

from rest_framework import exceptions, parsers

# No request of this API nests deeper than a few levels (a bulk record's line items: 3).
MAX_DEPTH = 32
TOO_DEEP = f"JSON parse error - nested deeper than {MAX_DEPTH} levels."


def too_deep(data, limit: int = MAX_DEPTH) -> bool:
    """True when lists and objects nest more than `limit` deep (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(TOO_DEEP) from None
        if too_deep(data):
            raise exceptions.ParseError(TOO_DEEP)
        return data
