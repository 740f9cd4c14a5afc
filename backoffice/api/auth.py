"""API keys (`Authorization: Bearer <key>` or `X-API-KEY: <key>`) and staff sessions."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import OuterRef, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone
from rest_framework import authentication, exceptions

from backoffice.logging import bind_log_context
from backoffice.models import ApiKey


def key_from_request(request) -> str | None:
    header = request.META.get("HTTP_X_API_KEY", "").strip()
    if header:
        return header
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    keyword, _, key = authorization.partition(" ")
    if keyword.lower() in {"bearer", "api-key"} and key.strip():
        return key.strip()
    return None


def request_api_key(request) -> ApiKey | None:
    """The API key a request authenticated with (None: a staff session, or no request).
    The services store it on what they write (Refund.api_key, RefundImport.api_key)."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


def preload_permissions(user) -> None:
    """Load the user's permissions (own and via groups) in one query, where ModelBackend
    looks for them, so permission checks cost one query per request whatever their number."""
    if user.is_superuser or hasattr(user, "_perm_cache"):
        return
    rows = (
        Permission.objects.filter(Q(user=user) | Q(group__user=user))
        .values_list("content_type__app_label", "codename")
        .distinct()
    )
    user._perm_cache = {f"{app}.{codename}" for app, codename in rows}


def _key_with_permissions(key: str) -> ApiKey:
    """The usable key (and its user) for `key`, as ApiKey.objects.get_from_key finds it;
    on PostgreSQL its user's permissions come in the same query (an array), so a request
    with a key costs one query for authentication and permissions together."""
    queryset = ApiKey.objects.get_usable_keys()
    if connection.vendor == "postgresql":
        owner = OuterRef("user_id")
        perms = (
            Permission.objects.filter(Q(user=owner) | Q(group__user=owner))
            .annotate(perm=Concat("content_type__app_label", Value("."), "codename"))
            .values("perm")
        )
        queryset = queryset.annotate(user_perms=ArraySubquery(perms))
    api_key = queryset.get(prefix=key.partition(".")[0])
    if not api_key.is_valid(key):  # the hash of the whole key
        raise ApiKey.DoesNotExist("Key is not valid.")
    return api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """A valid, unrevoked, unexpired key authenticates as its user; anything else is 401."""

    def authenticate(self, request):
        key = key_from_request(request)
        if key is None:
            return None
        try:
            api_key = _key_with_permissions(key)
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Authentication invalid") from None
        user = api_key.user
        if hasattr(api_key, "user_perms") and not user.is_superuser:
            user._perm_cache = set(api_key.user_perms)
        if api_key.has_expired or not user.is_active:
            raise exceptions.AuthenticationFailed("Authentication invalid")
        now = timezone.now()
        resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION)
        if api_key.last_used_at is None or now - api_key.last_used_at > resolution:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
        preload_permissions(user)
        # Every log line of the rest of the request names the key (by its prefix, never
        # the secret) and its user; RequestIdMiddleware drops both when the request ends.
        bind_log_context(api_key=api_key.prefix, user=user.get_username())
        return user, api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """The browsable API for staff logged in to the admin; CSRF is enforced."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        if not user.is_staff:
            return None
        preload_permissions(user)
        return result
