"""Login protection helpers for django-axes (see settings: AXES_*)."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest


class AxesLoginBackend(AxesStandaloneBackend):
    """Axes' lockout check for every login made over HTTP.

    Axes refuses (raises) when ``authenticate()`` is called without a request. Every
    web login here passes one (the admin's and DRF's login views do), so such a call
    never comes from a browser: it is code authenticating a user it already trusts
    (Django's test ``Client.login``, a shell). There is no client address to count
    failures against, so this backend stands aside instead of breaking the call.
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, for counting failed logins.

    Behind ``TRUSTED_PROXY_COUNT`` reverse proxies (each appending to X-Forwarded-For),
    the client is the entry that the outermost trusted proxy appended; anything left of
    it was written by the client and can't be trusted. With no proxy, REMOTE_ADDR.
    """
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if count > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")
