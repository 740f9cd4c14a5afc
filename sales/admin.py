"""Staff admin for customers, products and sales (the Sales and Orders lists).

Everything that cancels or refunds lives in `refunds/admin.py`, which extends the
SaleAdmin defined here: `refunds` imports `sales`, never the reverse.

The lists must stay fast on a million sales: every column comes from the sale row or
its customer (`list_select_related`), the full count is never asked for, and the
paginator counts at most a few thousand rows instead of the whole table.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import DecimalField, ExpressionWrapper, F, Q, QuerySet, Value
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.functional import cached_property

from backoffice.admin import ReadOnlyAdminMixin  # ledger rows: no add, change, delete
from backoffice.badges import badge
from backoffice.money import format_money

from .models import Customer, Order, Payment, Product, Sale, SaleChannel, SaleLine
from .selectors import sale_lookup
from .services import product_save

# A name that matches more customers than this is too vague to search sales by.
CUSTOMER_MATCHES = 500


class CappedCountPaginator(Paginator):
    """A paginator that never runs COUNT(*) over a whole big table.

    Unfiltered on PostgreSQL it uses the planner's estimate (pg_class.reltuples), so the
    list of a million sales opens in milliseconds; otherwise it counts at most `CAP`
    rows (`SELECT COUNT(*) FROM (... LIMIT CAP)`), which an index answers quickly. The
    last pages of a huge unfiltered list are reached by filtering, as staff do anyway.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        query = getattr(qs, "query", None)
        if query is None:
            return super().count
        estimate = self._estimate(qs)
        if estimate is not None:
            return estimate
        # It has a .query: a QuerySet (the stubs type object_list as any sequence).
        return cast("QuerySet[Any]", qs).order_by()[: self.CAP + 1].count()

    def _estimate(self, qs) -> int | None:
        if qs.query.where or qs.query.distinct:
            return None
        connection = connections[qs.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                [qs.model._meta.db_table],
            )
            row = cursor.fetchone()
        if not row or row[0] is None or row[0] < self.CAP:
            return None  # Never analysed, or small: an exact count is cheap.
        return int(row[0])


# Lists show dates short: "1 Dec 2026 19:03" (the page itself shows them long). The date
# never breaks; a narrow column puts the time under it.
SHORT_DATE, SHORT_TIME = "j\u00a0M\u00a0Y", "H:i"


def percent(rate) -> str:
    """A rate as people write it: Decimal("0.2000") -> "20%", Decimal("0.1750") -> "17.5%"."""
    if rate is None:
        return "—"
    text = f"{rate * 100:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def short_datetime(value) -> str:
    if value is None:
        return "—"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{date_format(local, SHORT_DATE)} {date_format(local, SHORT_TIME)}"


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "phone", "store_balance", "created_at"]
    search_fields = ["name", "=email", "=phone"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    readonly_fields = ["store_balance", "created_at"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "stock"]
    search_fields = ["=sku", "name"]
    show_full_result_count = False
    paginator = CappedCountPaginator

    def save_model(self, request, obj, form, change) -> None:
        """The stock set here is recorded as a move (opening, adjustment)."""
        product_save(obj)


class SaleLineMoneyMixin:
    """A sale line's amounts as money, in its sale's currency (the sale is selected with
    the line: no query per row)."""

    def _money(self, obj, amount):
        return format_money(amount, obj.sale.currency)

    @admin.display(description="unit price")
    def unit_price_display(self, obj):
        return self._money(obj, obj.unit_price)

    @admin.display(description="discount")
    def discount_display(self, obj):
        return self._money(obj, obj.discount)

    @admin.display(description="net", ordering="net_amount")
    def net_display(self, obj):
        return self._money(obj, obj.net_amount)

    @admin.display(description="tax", ordering="tax_amount")
    def tax_display(self, obj):
        return self._money(obj, obj.tax_amount)

    @admin.display(description="refunded (net + tax)")
    def refunded_amount_display(self, obj):
        return self._money(obj, obj.refunded_amount + obj.refunded_tax)


class SaleLineInline(SaleLineMoneyMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = SaleLine
    extra = 0
    can_delete = False
    fields = ["sku", "description", "quantity", "refunded_quantity", "unit_price_display",
              "discount_display", "tax_rate", "net_display", "tax_display",
              "refunded_amount_display"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups
    verbose_name_plural = "Lines (what was bought and what was already given back)"
    # A plain table (same columns): Django's tabular inline renders a readonly widget
    # per cell, ~400 ms for a 100-line sale (bench/RESULTS.md).
    template = "admin/sales/sale/lines_inline.html"

    def get_queryset(self, request):
        # tax_percent: 0.1750 -> 17.5000, shown as "17.5%" by lines_inline.html.
        return super().get_queryset(request).select_related("sale").annotate(
            tax_percent=ExpressionWrapper(
                F("tax_rate") * Value(100),
                output_field=DecimalField(max_digits=9, decimal_places=4),
            )
        )


class PaymentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = ["method", "amount_display", "refunded_display", "gateway", "gateway_reference",
              "created_by", "created_at"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups
    verbose_name_plural = "Payments (what was paid and what was already paid back)"

    @admin.display(description="amount")
    def amount_display(self, obj):
        return format_money(obj.amount, obj.sale.currency)

    @admin.display(description="refunded")
    def refunded_display(self, obj):
        return format_money(obj.refunded_amount, obj.sale.currency)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sale", "created_by")


def sale_cancellation(sale: Sale, attribute: str):
    """An attribute of the sale's cancellation (called if it is a method), or None when
    the sale is not cancelled. Reads sale.cancellation: select_related it."""
    cancellation = sale.cancellation_or_none
    if cancellation is None:
        return None
    value = getattr(cancellation, attribute)
    return value() if callable(value) else value


class SaleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The Sales list and a sale's page. `refunds.admin` adds refunds, alerts and actions."""

    list_display = ["number", "created_display", "customer_display", "status_display",
                    "total_display", "paid_display", "refunded_display", "kind_channel"]
    list_display_links = ["number"]
    list_filter = ["status", "kind", "channel", "created_at"]
    search_fields = ["=number", "=external_id", "customer__name", "=customer__email"]
    search_help_text = (
        "Sale id, number (S-000123) or external id, exactly; or part of the customer's "
        "name, or their whole email."
    )
    date_hierarchy = "created_at"
    list_select_related = ["customer"]
    list_per_page = 50
    show_full_result_count = False
    # Facet counts would COUNT every filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    ordering = ["-created_at", "-id"]
    inlines = [SaleLineInline, PaymentInline]
    fieldsets = [
        (None, {"fields": ["number", "external_id", "kind", "channel", "status_display",
                           "customer", "currency"]}),
        ("Amounts", {"fields": ["subtotal_display", "tax_display", "fees_display",
                                "total_display", "paid_display", "refunded_display",
                                "balance_display"]}),
        ("History", {"fields": ["created_by", "created_at", "paid_at", "cancelled_at",
                                "cancelled_by", "cancel_reason", "cancel_note"]}),
    ]
    readonly_fields = [
        "number", "external_id", "kind", "channel", "status_display", "customer", "currency",
        "subtotal_display", "tax_display", "fees_display", "total_display", "paid_display",
        "refunded_display", "balance_display", "created_by", "created_at", "paid_at",
        "cancelled_at", "cancelled_by", "cancel_reason", "cancel_note",
    ]

    class Media:
        css = {"all": ["backoffice/css/admin.css"]}

    # Sales are made through the API, the commands or seed_demo (the sale service);
    # the admin reads them and refunds or cancels them, it never edits amounts
    # (ReadOnlyAdminMixin: no add, change or delete).

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(
            "customer", "created_by", "cancellation", "cancellation__cancelled_by"
        )

    # The sale's cancellation (its SaleCancellation row, or none), field by field.

    @admin.display(description="cancelled at")
    def cancelled_at(self, obj):
        return sale_cancellation(obj, "cancelled_at")

    @admin.display(description="cancelled by")
    def cancelled_by(self, obj):
        return sale_cancellation(obj, "cancelled_by")

    @admin.display(description="cancel reason")
    def cancel_reason(self, obj):
        return sale_cancellation(obj, "get_reason_display")

    @admin.display(description="cancel note")
    def cancel_note(self, obj):
        return sale_cancellation(obj, "note")

    def get_search_results(self, request, queryset, search_term):
        """Index-friendly search (Django's would OR an icontains over a join: a full scan
        of a million sales). Customers are found first, in their own smaller table; the
        sales then by id, number, external id or customer id, all indexed."""
        term = search_term.strip()
        if not term:
            return queryset, False
        customers = Customer.objects.filter(
            Q(email=term) | Q(email=term.lower()) | Q(name__icontains=term)
        ).values_list("pk", flat=True)[:CUSTOMER_MATCHES]
        query = sale_lookup(term)
        ids = list(customers)
        if ids:
            query |= Q(customer_id__in=ids)
        return queryset.filter(query), False

    @admin.display(description="created", ordering="created_at")
    def created_display(self, obj):
        return short_datetime(obj.created_at)

    @admin.display(description="kind · channel")
    def kind_channel(self, obj):
        return f"{obj.get_kind_display()} · {obj.get_channel_display()}"

    @admin.display(description="customer", ordering="customer__name")
    def customer_display(self, obj):
        if obj.customer is None:
            return "—"
        return obj.customer.name

    @admin.display(description="total", ordering="total")
    def total_display(self, obj):
        return format_money(obj.total, obj.currency)

    @admin.display(description="paid", ordering="amount_paid")
    def paid_display(self, obj):
        return format_money(obj.amount_paid, obj.currency)

    @admin.display(description="refunded", ordering="amount_refunded")
    def refunded_display(self, obj):
        if not obj.amount_refunded:
            return "—"
        return format_money(obj.amount_refunded, obj.currency)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return badge(obj)

    @admin.display(description="subtotal")
    def subtotal_display(self, obj):
        return format_money(obj.subtotal, obj.currency)

    @admin.display(description="tax")
    def tax_display(self, obj):
        return format_money(obj.tax_total, obj.currency)

    @admin.display(description="fees (processing / reseller / shipping)")
    def fees_display(self, obj):
        return " / ".join(
            format_money(amount, obj.currency)
            for amount in (obj.processing_fee, obj.reseller_fee, obj.shipping_fee)
        )

    @admin.display(description="balance due")
    def balance_display(self, obj):
        return format_money(obj.balance_due, obj.currency)


class OrderAdmin(SaleAdmin):
    """Sales from the online channels, as integrators call them."""

    list_display = ["number", "external_id", "created_display", "customer_display",
                    "status_display", "total_display", "paid_display", "refunded_display",
                    "kind_channel"]
    list_filter = ["status", "kind", "channel", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(
            channel__in=[SaleChannel.STOREFRONT, SaleChannel.API]
        )


admin.site.register(Sale, SaleAdmin)
admin.site.register(Order, OrderAdmin)


@admin.register(SaleLine)
class SaleLineAdmin(SaleLineMoneyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: a line is fixed once sold; its counters move only through refunds."""

    list_display = ["id", "sale", "sku", "description", "quantity", "refunded_quantity",
                    "net_display", "tax_display"]
    list_select_related = ["sale"]
    search_fields = ["=sale__number", "=sku"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    fields = ["sale", "product", "sku", "description", "quantity", "refunded_quantity",
              "unit_price_display", "discount_display", "tax_rate_display", "net_display",
              "tax_display", "refunded_amount_display"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups

    class Media:
        css = {"all": ["backoffice/css/admin.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sale", "product")

    @admin.display(description="tax rate")
    def tax_rate_display(self, obj):
        return percent(obj.tax_rate)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: payments are recorded by the balance service, paid back by refunds."""

    list_display = ["id", "sale", "method", "amount_display", "refunded_display", "gateway",
                    "created_display"]
    list_filter = ["method", "gateway"]
    list_select_related = ["sale"]
    search_fields = ["=sale__number", "=gateway_reference"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    fields = ["sale", "method", "amount_display", "refunded_display", "gateway",
              "gateway_reference", "created_by", "created_at"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups

    class Media:
        css = {"all": ["backoffice/css/admin.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sale", "created_by")

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj):
        return format_money(obj.amount, obj.sale.currency)

    @admin.display(description="paid back", ordering="refunded_amount")
    def refunded_display(self, obj):
        return format_money(obj.refunded_amount, obj.sale.currency)

    @admin.display(description="created", ordering="created_at")
    def created_display(self, obj):
        return short_datetime(obj.created_at)
