"""Admin for customer alerts (the outbox): failures visible, "resend" for staff."""

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html
from django.utils.text import Truncator

from .models import AlertStatus, CustomerAlert
from .services.alerts import alerts_resend


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Failed, or pending with errors")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(
                Q(status=AlertStatus.FAILED) | (Q(status=AlertStatus.PENDING) & ~Q(last_error=""))
            )
        return queryset


_STATUS_COLOURS = {
    AlertStatus.PENDING: "#b36b00", AlertStatus.SENT: "#2e7d32",
    AlertStatus.FAILED: "#c62828", AlertStatus.CANCELLED: "#777",
}


@admin.register(CustomerAlert)
class CustomerAlertAdmin(admin.ModelAdmin):
    list_display = ["id", "sale", "refund_id", "event", "channel", "recipient", "status_badge",
                    "attempts", "error", "created_at", "sent_at"]
    list_filter = [NeedsAttentionFilter, "status", "event", "channel"]
    search_fields = ["recipient", "sale__number", "sale__external_id"]
    list_select_related = ["sale"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in CustomerAlert._meta.fields]
    actions = ["resend"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html('<strong style="color:{}">{}</strong>',
                           _STATUS_COLOURS.get(obj.status, "#222"), obj.get_status_display())

    @admin.display(description="last error")
    def error(self, obj):
        return Truncator(obj.last_error).chars(80) if obj.last_error else ""

    @admin.action(description="Resend selected alerts", permissions=["change"])
    def resend(self, request, queryset):
        result = alerts_resend(alert_ids=queryset.values_list("pk", flat=True))
        if result.queued:
            self.message_user(request, f"{len(result.queued)} alert(s) queued to be sent again.",
                              messages.SUCCESS)
        if result.skipped:
            self.message_user(
                request,
                f"{len(result.skipped)} alert(s) skipped: already sent, or their refund failed "
                f"(#{', #'.join(map(str, result.skipped))}).",
                messages.WARNING,
            )
