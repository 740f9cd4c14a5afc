"""Throttling per API key (or per staff user), counted in Django's cache."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from backoffice.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Rate from settings.API_THROTTLE_RATES[scope] (read per request, so configurable)."""

    scope = "key"

    def __init__(self) -> None:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_rate(self) -> str | None:
        scope = getattr(self, "view_scope", None) or self.scope
        return settings.API_THROTTLE_RATES.get(scope)

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scope", None)
        if scope and scope != self.scope:
            self.view_scope = scope
            self.rate = self.get_rate()
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        scope = getattr(self, "view_scope", None) or self.scope
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle:{scope}:{ident}"
