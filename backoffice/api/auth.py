"""API keys (`Authorization: Bearer <key>` or `X-API-KEY: <key>`) and staff sessions."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions

from backoffice.logging import bind_log_context
from backoffice.models import ApiKey

from .throttling import ClientAddressThrottle


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
    on PostgreSQL its user's permissions come in the same query (an array, in
    `user_perms`), so a request with a key costs one query for authentication and
    permissions together. The SQL is built once from the models' metadata."""
    prefix = key.partition(".")[0]
    if connection.vendor != "postgresql":
        api_key = ApiKey.objects.get_usable_keys().get(prefix=prefix)
    else:
        with connection.cursor() as cursor:
            cursor.execute(_key_sql(), [prefix])
            row = cursor.fetchone()
        if row is None:
            raise ApiKey.DoesNotExist("No such key.")
        key_fields, user_fields = _fields(ApiKey), _fields(get_user_model())
        n = len(key_fields)
        api_key = ApiKey.from_db(connection.alias, [f.attname for f in key_fields],
                                 list(row[:n]))
        user = get_user_model().from_db(connection.alias, [f.attname for f in user_fields],
                                        list(row[n:n + len(user_fields)]))
        ApiKey.user.field.set_cached_value(api_key, user)
        api_key.user_perms = row[-1]  # type: ignore[attr-defined]
    if not api_key.is_valid(key):  # the hash of the whole key
        raise ApiKey.DoesNotExist("Key is not valid.")
    return api_key


def _fields(model) -> list:
    return list(model._meta.concrete_fields)


def _through(model, name: str) -> Any:
    return model._meta.get_field(name).remote_field.through._meta


@functools.cache
def _key_sql() -> str:
    qn = connection.ops.quote_name
    User = get_user_model()
    user_perms = _through(User, "user_permissions")
    user_groups = _through(User, "groups")
    group_perms = _through(Group, "permissions")
    columns = [f"k.{qn(f.column)}" for f in _fields(ApiKey)]
    columns += [f"u.{qn(f.column)}" for f in _fields(User)]
    return (
        f"SELECT {', '.join(columns)}, ARRAY("
        f"SELECT ct.app_label || '.' || p.codename FROM {qn(Permission._meta.db_table)} p "
        f"JOIN {qn(ContentType._meta.db_table)} ct ON ct.id = p.content_type_id "
        f"WHERE p.id IN (SELECT permission_id FROM {qn(user_perms.db_table)} "
        "WHERE user_id = k.user_id "
        f"UNION SELECT gp.permission_id FROM {qn(group_perms.db_table)} gp "
        f"JOIN {qn(user_groups.db_table)} ug ON ug.group_id = gp.group_id "
        "WHERE ug.user_id = k.user_id)) "
        f"FROM {qn(ApiKey._meta.db_table)} k JOIN {qn(User._meta.db_table)} u "
        "ON u.id = k.user_id WHERE k.prefix = %s AND NOT k.revoked"
    )


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """A valid, unrevoked, unexpired key authenticates as its user; anything else is 401."""

    def get_key(self, request) -> str | None:
        """The key the request sends (Bearer, or X-API-KEY), or None."""
        return key_from_request(request)

    def authenticate(self, request):
        key = self.get_key(request)
        if key is None:
            return None
        try:
            api_key = _key_with_permissions(key)
        except ApiKey.DoesNotExist:
            ClientAddressThrottle.check(request)  # guessing keys: 429 per address
            raise exceptions.AuthenticationFailed("Authentication invalid") from None
        user = api_key.user
        if hasattr(api_key, "user_perms") and not user.is_superuser:
            user._perm_cache = set(api_key.user_perms)
        if api_key.has_expired or not user.is_active:
            ClientAddressThrottle.check(request)
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
