"""Admin for customer alerts (the outbox)."""

from django.contrib import admin

from .models import CustomerAlert


@admin.register(CustomerAlert)
class CustomerAlertAdmin(admin.ModelAdmin):
    list_display = ["id", "sale", "event", "channel", "recipient", "status", "attempts",
                    "created_at", "sent_at"]
    list_filter = ["status", "event", "channel"]
    list_select_related = ["sale"]
    show_full_result_count = False
    readonly_fields = [f.name for f in CustomerAlert._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
