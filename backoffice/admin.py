from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from rest_framework_api_key.admin import APIKeyModelAdmin

from .models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    """Create a key (shown once, in the message after saving) or revoke it (for good)."""

    list_display = (*APIKeyModelAdmin.list_display, "user", "last_used_at")  # type: ignore[assignment]
    list_select_related = ("user",)
    list_filter = ("revoked", "created")  # type: ignore[assignment]
    search_fields = ("name", "prefix", "user__username")  # type: ignore[assignment]
    raw_id_fields = ("user",)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj)) + ("last_used_at",)
        if obj is not None:
            fields += ("user",)
        return fields


# The library registers its own concrete APIKey model; this project uses ApiKey instead.
try:
    from rest_framework_api_key.models import APIKey

    admin.site.unregister(APIKey)
except NotRegistered:
    pass
