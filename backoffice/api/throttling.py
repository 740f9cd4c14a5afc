"""Throttling per API key (or per staff user), and per client address for requests with
no key or a bad one, counted in Django's cache (shared Redis in production).

A cache outage never fails a request: the count is skipped, the request goes on, and
backoffice.health logs `cache_unavailable` and counts it (shown by /readyz).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

from backoffice.health import cache_call
from backoffice.models import ApiKey
from backoffice.security import client_ip


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
        return cache_call("throttle", lambda: super(ApiKeyRateThrottle, self).allow_request(
            request, view), True)

    def get_ident(self, request) -> str:
        """The client's address as the login lockout sees it (TRUSTED_PROXY_COUNT)."""
        return client_ip(request) or ""

    def get_cache_key(self, request, view) -> str | None:
        scope = getattr(self, "view_scope", None) or self.scope
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle:{scope}:{ident}"


class ClientAddressThrottle(ApiKeyRateThrottle):
    """Requests that name no usable key, per client address (API_THROTTLE_RATES
    ["address"]). DRF checks throttles only after authentication and permissions, which
    refuse these requests first; so the authentication classes call check() instead."""

    scope = "address"

    def get_cache_key(self, request, view) -> str | None:
        return f"throttle:{self.scope}:ip:{self.get_ident(request)}"

    @classmethod
    def check(cls, request) -> None:
        throttle = cls()
        if not throttle.allow_request(request, None):
            raise exceptions.Throttled(throttle.wait())
