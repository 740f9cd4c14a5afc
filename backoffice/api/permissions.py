"""Django permissions decide: each view names what a method needs."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from .throttling import ClientAddressThrottle


class HasRequiredPermissions(BasePermission):
    """Authenticated, and holding the view's `required_permissions[METHOD]` (or ["*"]).

    `required_permissions` maps an HTTP method (or "*") to Django permission names;
    views may instead define `get_required_permissions(request)`.
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            # Counted per client address (429 past the rate) before the 401: DRF would
            # check throttles only after this refusal.
            ClientAddressThrottle.check(request)
            return False
        getter = getattr(view, "get_required_permissions", None)
        if getter is not None:
            perms = getter(request)
        else:
            table = getattr(view, "required_permissions", {})
            perms = table.get(request.method, table.get("*", []))
            if request.method in ("HEAD", "OPTIONS") and request.method not in table:
                perms = table.get("GET", perms)
        return user.has_perms(perms)
