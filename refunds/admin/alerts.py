"""Admin for customer alerts (the outbox): failures visible, "resend" for staff.

Built like the Sales list for a big table: the columns come from the alert row and its
sale (`list_select_related`), no full count (a capped paginator), no facet counts, a
date hierarchy of MIN/MAX only, and a search that hits indexed columns exactly (the
sale found first by id, number or external id) instead of a substring scan over a join.
"""

from django.contrib import admin, messages
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from backoffice.badges import badge
from sales.admin import CappedCountPaginator, short_datetime
from sales.models import Sale
from sales.selectors import sale_lookup

from ..models import AlertStatus, CustomerAlert
from ..services.alerts import alerts_mark_sent, alerts_resend


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Failed, outcome unknown, or pending with errors")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(
                Q(status__in=[AlertStatus.FAILED, AlertStatus.UNKNOWN])
                | (Q(status=AlertStatus.PENDING) & ~Q(last_error=""))
            )
        return queryset


@admin.register(CustomerAlert)
class CustomerAlertAdmin(admin.ModelAdmin):
    list_display = ["id", "sale", "refund_link", "event", "channel", "recipient",
                    "status_badge", "attempts", "error", "created_display", "sent_display"]
    list_filter = [NeedsAttentionFilter, "status", "event", "channel"]
    # Matched by get_search_results (exact or prefix, indexed); search_fields only turns
    # the search box on.
    search_fields = ["=recipient"]
    search_help_text = ("Sale id, number or external id, exactly; or the recipient's email "
                        "or phone, or its beginning.")
    list_select_related = ["sale"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    date_hierarchy = "created_at"
    change_list_template = "admin/refunds/customeralert/change_list.html"  # light hierarchy
    readonly_fields = [f.name for f in CustomerAlert._meta.fields]
    actions = ["resend", "mark_sent"]

    def has_add_permission(self, request):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        sale_ids = list(Sale.objects.filter(sale_lookup(term)).values_list("pk", flat=True)[:3])
        query = Q(recipient__startswith=term)
        if term.lower() != term:
            query |= Q(recipient__startswith=term.lower())
        if sale_ids:
            query |= Q(sale_id__in=sale_ids)
        return queryset.filter(query), False

    @admin.display(description="refund", ordering="refund")
    def refund_link(self, obj):
        if obj.refund_id is None:
            return "—"
        url = reverse("admin:refunds_refund_change", args=[obj.refund_id])
        return format_html('<a href="{}">#{}</a>', url, obj.refund_id)

    @admin.display(description="created", ordering="created_at")
    def created_display(self, obj):
        return short_datetime(obj.created_at)

    @admin.display(description="sent", ordering="sent_at")
    def sent_display(self, obj):
        return short_datetime(obj.sent_at) if obj.sent_at else "—"

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj)

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

    @admin.action(description="Record selected alerts (outcome unknown) as sent",
                  permissions=["change"])
    def mark_sent(self, request, queryset):
        """An alert whose outcome was unknown, found in the provider's log (its email by
        its Message-ID): record it sent, so it is never sent again."""
        marked = alerts_mark_sent(alert_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request, f"{len(marked)} alert(s) recorded as sent; only alerts whose outcome "
            "was unknown are changed.", messages.SUCCESS if marked else messages.WARNING)
