"""The refunds ledger in the admin: refunds, their lines and allocations, imports and
idempotency keys — read-only for everybody: no add, change or delete. A correction is
a new refund. A refund's page links its credit note; the list links the import page.
"""

from __future__ import annotations

from typing import cast

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from backoffice.badges import badge
from backoffice.errors import DomainError
from backoffice.models import IdempotencyKey
from backoffice.money import format_money
from sales.admin import CappedCountPaginator, ReadOnlyAdminMixin, short_datetime
from sales.models import CancelReason

from ..models import Refund, RefundImport, RefundLine, RefundPayment, RefundReason
from ..services.settle import refund_needs_attention_q, refund_settle_offline
from .credit_note import credit_note_view
from .import_page import import_view
from .pages import REFUND_PERMISSION, RefundColumnsMixin, refusable


class ReasonFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return [*RefundReason.choices,
                *[(code, f"Cancelled: {label}") for code, label in CancelReason.choices]]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(reason=self.value())
        return queryset


class BatchFilter(admin.SimpleListFilter):
    """In a batch or not, and the most recent batches (search finds any batch id)."""

    title = "batch"
    parameter_name = "batch"

    def lookups(self, request, model_admin):
        recent = []
        rows = (Refund.objects.exclude(batch_id="").order_by("-created_at")
                .values_list("batch_id", flat=True)[:200])
        for batch in rows:
            if batch not in recent:
                recent.append(batch)
            if len(recent) == 8:
                break
        return [("__any__", "In a batch"), ("__none__", "Not in a batch"),
                *[(b, b) for b in recent]]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "__any__":
            return queryset.exclude(batch_id="")
        if value == "__none__":
            return queryset.filter(batch_id="")
        if value:
            return queryset.filter(batch_id=value)
        return queryset


class RefundMoneyMixin:
    """Money columns of the rows that belong to a refund, in the refund's currency."""

    @admin.display(description="line")
    def line_display(self, obj):
        line = obj.sale_line
        if line.sku:
            return format_html('{} <span class="bo-muted">{}</span>', line.description,
                               line.sku)
        return line.description

    @admin.display(description="amount (net)", ordering="amount")
    def amount_display(self, obj):
        return format_money(obj.amount, obj.refund.currency)

    @admin.display(description="tax", ordering="tax_amount")
    def tax_display(self, obj):
        return format_money(obj.tax_amount, obj.refund.currency)

    @admin.display(description="amount", ordering="amount")
    def paid_back_display(self, obj):
        return format_money(obj.amount, obj.refund.currency)

    @admin.display(description="settled", ordering="settled_at")
    def settled_display(self, obj):
        return short_datetime(obj.settled_at)


class RefundLineInline(RefundMoneyMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = RefundLine
    extra = 0
    fields = ["line_display", "quantity", "amount_display", "tax_display"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups
    verbose_name_plural = "What was given back"

    def get_queryset(self, request):
        # Each row's header is str(refund_line) ("1 × Notebook A5"); money in the
        # refund's currency.
        return super().get_queryset(request).select_related("refund", "sale_line")


class RefundPaymentInline(RefundMoneyMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = RefundPayment
    extra = 0
    fields = ["payment", "paid_back_display", "online", "status", "gateway_reference",
              "attempts", "last_error", "settled_at"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups
    verbose_name_plural = "How it was paid back"

    def get_queryset(self, request):
        # Headers are str(allocation) ("£9.84 to Card (succeeded)"), the payment column
        # str(payment) ("Card £105.15", in its sale's currency).
        return super().get_queryset(request).select_related("refund", "payment__sale")


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Refused on one payment after another paid back")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(needs_attention=True)
        return queryset


@admin.register(Refund)
class RefundAdmin(RefundColumnsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # Fits 1360 px: no id (the date links to the refund), created by and batch id are
    # on the refund's page and stay filters / search.
    list_display = ["created_display", "sale_link", "type", "status_display",
                    "total_display", "reason_display", "online", "source", "credit_note"]
    list_display_links = ["created_display"]
    list_filter = [NeedsAttentionFilter, "type", "status", ReasonFilter, "online", BatchFilter,
                   "source", "created_at"]
    search_fields = ["=sale__number", "=sale__external_id", "=external_id", "=batch_id",
                     "=sale__customer__email"]
    search_help_text = "Sale number or external id, refund external id, batch id or " \
                       "customer email (exactly)."
    date_hierarchy = "created_at"
    list_select_related = ["sale", "created_by"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    change_list_template = "admin/refunds/refund/change_list.html"  # + light date hierarchy
    change_form_template = "admin/refunds/refund/change_form.html"
    inlines = [RefundLineInline, RefundPaymentInline]
    fieldsets = [
        (None, {"fields": ["sale_link", "type", "status_display", "units",
                           "reason_display", "note", "created_at", "created_by",
                           "source", "api_key"]}),
        ("Amounts", {"fields": ["lines_amount_display", "tax_amount_display",
                                "processing_fee_display", "reseller_fee_display",
                                "shipping_fee_display", "total_display"]}),
        ("Options as asked", {"fields": ["restock", "refund_processing_fee",
                                         "refund_reseller_fee", "refund_shipping",
                                         "alert_customer", "online"]}),
        ("Settlement", {"fields": ["settled_at", "failure_reason"]}),
        ("Import and batch", {"classes": ["collapse"],
                              "fields": ["batch_id", "external_id", "import_source",
                                         "returned_at", "withdrawn_at",
                                         "idempotency_key_display"]}),
    ]
    readonly_fields = [
        "sale_link", "type", "status_display", "total_display", "units", "reason_display",
        "note", "created_at", "created_by", "source", "api_key", "lines_amount_display",
        "tax_amount_display", "processing_fee_display", "reseller_fee_display",
        "shipping_fee_display", "restock", "refund_processing_fee", "refund_reseller_fee",
        "refund_shipping", "alert_customer", "online", "settled_at", "failure_reason",
        "batch_id", "external_id", "import_source", "returned_at", "withdrawn_at",
        "idempotency_key_display",
    ]

    class Media:
        css = {"all": ["backoffice/css/admin.css"]}

    actions = ["settle_refused_part_offline"]

    def get_queryset(self, request):
        # The page's title and breadcrumb are str(refund): "Refund #13 of S-000008".
        return (super().get_queryset(request).select_related("sale", "created_by", "api_key")
                .annotate(needs_attention=refund_needs_attention_q()))

    def has_refund_permission(self, request):
        return request.user.has_perm(REFUND_PERMISSION)

    @admin.action(description="Record the refused part as given back offline",
                  permissions=["refund"])
    def settle_refused_part_offline(self, request, queryset):
        """A refund refused on one payment after another paid back (settle.py): staff gave
        the refused part back another way. A confirmation page first, as delete_selected."""
        refunds = list(queryset.select_related("sale").order_by("pk"))
        waiting = [r for r in refunds if r.needs_attention]
        if request.POST.get("confirm") != "yes":
            owed = {
                r.pk: sum(a.amount for a in r.allocations.all() if a.status == "failed")
                for r in waiting
            }
            context = {
                **self.admin_site.each_context(request),
                "title": "Record the refused part as given back offline",
                "opts": self.model._meta,
                "rows": [(r, format_money(owed[r.pk], r.currency), r.failure_reason)
                         for r in waiting],
                "skipped": [r for r in refunds if not r.needs_attention],
                "action": "settle_refused_part_offline",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/refunds/refund/settle_offline_confirmation.html", context)
        note = request.POST.get("note", "").strip()[:80]
        for refund in refunds:
            try:
                done = refund_settle_offline(refund_id=refund.pk, actor=request.user,
                                             note=note)
            except DomainError as exc:
                self.message_user(request, f"{refund}: not recorded. {exc.message}",
                                  messages.WARNING)
                continue
            self.message_user(
                request, f"{refund}: recorded as given back offline; the refund is "
                f"{done.get_status_display().lower()} and the customer is told if asked.",
                messages.SUCCESS)
        return None

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/credit-note/", wrap(self.credit_note_page),
                 name="refunds_refund_credit_note"),
            path("import/", wrap(self.import_page), name="refunds_refund_import"),
            *super().get_urls(),
        ]

    def credit_note_page(self, request, object_id):
        return refusable(credit_note_view, self, request, object_id)

    def import_page(self, request):
        return refusable(import_view, self, request)

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        user = request.user
        extra_context["can_import"] = user.has_perm(REFUND_PERMISSION) and \
            user.has_perm("refunds.add_refundimport")
        return super().changelist_view(request, extra_context)

    @admin.display(description="created", ordering="created_at")
    def created_display(self, obj):
        return short_datetime(obj.created_at)

    @admin.display(description="sale", ordering="sale")
    def sale_link(self, obj):
        url = reverse("admin:sales_sale_change", args=[obj.sale_id])
        return format_html('<a href="{}">{}</a>', url, obj.sale)

    @admin.display(description="total", ordering="total")
    def total_display(self, obj):
        return format_money(obj.total, obj.currency)

    @admin.display(description="lines (net)")
    def lines_amount_display(self, obj):
        return format_money(obj.lines_amount, obj.currency)

    @admin.display(description="tax")
    def tax_amount_display(self, obj):
        return format_money(obj.tax_amount, obj.currency)

    @admin.display(description="processing fee")
    def processing_fee_display(self, obj):
        return format_money(obj.processing_fee, obj.currency)

    @admin.display(description="reseller fee")
    def reseller_fee_display(self, obj):
        return format_money(obj.reseller_fee, obj.currency)

    @admin.display(description="shipping")
    def shipping_fee_display(self, obj):
        return format_money(obj.shipping_fee, obj.currency)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return badge(obj)


    @admin.display(description="idempotency key")
    def idempotency_key_display(self, obj):
        """The key that asked for it, from the one store (gone once purged: "-")."""
        row = IdempotencyKey.objects.filter(refund=obj).only("owner", "key").first()
        return f"{row.key} ({row.owner or 'command'})" if row else "-"


@admin.register(RefundLine)
class RefundLineAdmin(RefundMoneyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "refund", "line_display", "quantity", "amount_display",
                    "tax_display"]
    # str(refund) names the sale: refund__sale.
    list_select_related = ["refund__sale", "sale_line"]
    search_fields = ["=refund__sale__number"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    fields = ["refund", "line_display", "quantity", "amount_display", "tax_display"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups

    class Media:
        css = {"all": ["backoffice/css/admin.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("refund__sale", "sale_line")


@admin.register(RefundPayment)
class RefundPaymentAdmin(RefundMoneyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "refund", "payment", "paid_back_display", "online", "status",
                    "attempts", "settled_display"]
    list_filter = ["status", "online"]
    # str(refund) names the sale, str(payment) shows its amount in the sale's currency.
    list_select_related = ["refund__sale", "payment__sale"]
    search_fields = ["=refund__sale__number", "=gateway_reference"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    fields = ["refund", "payment", "paid_back_display", "online", "status",
              "gateway_reference", "attempts", "last_error", "created_at", "settled_at"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups

    class Media:
        css = {"all": ["backoffice/css/admin.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("refund__sale", "payment__sale")


@admin.register(RefundImport)
class RefundImportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "received_at", "source", "count", "outcome", "created_by",
                    "api_key"]
    list_filter = ["outcome", "source"]
    list_select_related = ["created_by", "api_key"]
    show_full_result_count = False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "response_status", "refund", "created_at"]
    list_select_related = ["refund__sale"]  # str(refund) names the sale
    search_fields = ["=key"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    exclude = ["request_hash"]
