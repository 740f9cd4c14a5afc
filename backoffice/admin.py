"""API keys, users and django-axes' login records, as the audit trail needs them.

Keys are revoked, never deleted: a refund or an import names the key it came through
(Refund.api_key, RefundImport.api_key, PROTECT). A user who acted (a sale, a payment, a
refund, an import, a cancel) can't be deleted either (PROTECT): the delete page says
what protects them; deactivate them instead. Axes' logins and failed logins are a
record of who tried to get in: read-only for everybody. Its access attempts (the
lockout counters) stay deletable, so staff can unlock someone.
"""

from axes.admin import AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from rest_framework_api_key.admin import APIKeyModelAdmin

from .models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    """Create a key (shown once, in the page that answers the save) or revoke it (for
    good). The key never goes into a message: messages travel in a cookie (signed, not
    encrypted) or the session, where it would outlive the page."""

    list_display = (*APIKeyModelAdmin.list_display, "user", "last_used_at")  # type: ignore[assignment]
    list_select_related = ("user",)
    list_filter = ("revoked", "created")  # type: ignore[assignment]
    search_fields = ("name", "prefix", "user__username")  # type: ignore[assignment]
    raw_id_fields = ("user",)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj)) + ("last_used_at",)
        if obj is not None:
            # The line-item refund API's connectionId (docs/compat-orders-api.md): drawn
            # when the key is saved, so shown from then on (and on the page answering the save).
            fields += ("user", "connection_id")
        return fields

    def has_delete_permission(self, request, obj=None):
        # Revoke instead: what was done with the key keeps naming it.
        return False

    def save_model(self, request, obj, form=None, change=False):
        if obj.pk:
            obj.save()
            return
        request._created_api_key = self.model.objects.assign_key(obj)  # type: ignore[attr-defined]
        obj.save()

    def response_add(self, request, obj, post_url_continue=None):
        key = getattr(request, "_created_api_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(request, "admin/backoffice/apikey/created.html", {
            **self.admin_site.each_context(request), "object": obj, "key": key,
            "opts": self.opts, "title": "API key created",
            "changelist_url": reverse("admin:backoffice_apikey_changelist"),
        })
        add_never_cache_headers(response)
        return response


# The library registers its own concrete APIKey model; this project uses ApiKey instead.
try:
    from rest_framework_api_key.models import APIKey

    admin.site.unregister(APIKey)
except NotRegistered:
    pass


class ReadOnlyAdminMixin:
    """No add, change or delete permission, for anybody (superusers too)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AccessLogReadOnlyAdmin(ReadOnlyAdminMixin, AccessLogAdmin):
    pass


class AccessFailureLogReadOnlyAdmin(ReadOnlyAdminMixin, AccessFailureLogAdmin):
    pass


# Axes registers its admins (AXES_ENABLE_ADMIN) before this module is loaded ("axes"
# comes first in INSTALLED_APPS): the two log admins are replaced; AccessAttempt's stays.
for _model, _model_admin in ((AccessLog, AccessLogReadOnlyAdmin),
                             (AccessFailureLog, AccessFailureLogReadOnlyAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
        admin.site.register(_model, _model_admin)


class AuditedUserAdmin(UserAdmin):
    """Deleting a user who acted is refused by the database (PROTECT); the page names
    what protects them (templates/admin/auth/user/delete_confirmation.html says to
    deactivate them instead)."""

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(
            objs, request
        )
        if protected:
            # The protected rows are ledger rows nobody may delete, so Django would also
            # list them as "no permission": what stops it is that they are protected —
            # say that (nothing is deleted either way).
            perms_needed = set()
        return to_delete, model_count, perms_needed, protected


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
