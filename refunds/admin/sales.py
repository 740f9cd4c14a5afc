"""The refund / cancel tools on a sale's page and lists.

`sales/admin.py` registers the Sales and Orders lists; this module re-registers them
with what only `refunds` may know (refunds imports sales, never the reverse): the
refunds and alerts of a sale, the "Refund…" and "Cancel…" pages, and the list actions
"Cancel selected sales" and "Refund selected sales in full".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from backoffice.errors import DomainError
from backoffice.money import format_money
from sales.admin import OrderAdmin, ReadOnlyAdminMixin, SaleAdmin
from sales.models import Order, Sale, SaleStatus

from ..models import CustomerAlert, Refund
from ..services import refund_create, refund_preview, sale_cancel, sale_cancel_preview
from .cancel_page import cancel_audit, cancel_summary, cancel_view
from .forms import BulkRefundForm, CancelForm
from .pages import CANCEL_PERMISSION, REFUND_PERMISSION, RefundColumnsMixin, refusable
from .refund_page import refund_preview_view, refund_view

# A list action's confirmation page previews every sale: keep a selection human-sized.
ACTION_LIMIT = 200


def _options(refund: Refund) -> str:
    parts = ["restock" if refund.restock else "no restock"]
    fees = [name for name, flag in (("processing", refund.refund_processing_fee),
                                    ("reseller", refund.refund_reseller_fee),
                                    ("shipping", refund.refund_shipping)) if flag]
    parts.append(f"fees: {', '.join(fees)}" if fees else "no fees")
    parts.append("online" if refund.online else "offline")
    if refund.alert_customer:
        parts.append("customer alerted")
    return " · ".join(parts)


def _how(allocations, currency: str, *, amounts: bool = False) -> str:
    """Where the money goes back: "Card", or "Cash £10.00, Card £105.15"."""
    if not amounts and len(allocations) == 1:
        return allocations[0].payment.get_method_display()
    return format_html_join(", ", "{} {}", ((a.payment.get_method_display(),
                                             format_money(a.amount, currency))
                                            for a in allocations))


# -- a sale's refunds and alerts ----------------------------------------------------------


class RefundInline(RefundColumnsMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    extra = 0
    fk_name = "sale"
    fields = ["refund_link", "created_at", "type", "status", "total_display", "units",
              "options_display", "reason_display", "note", "source", "created_by",
              "credit_note"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups
    verbose_name_plural = "Refunds (who, when, through which door, with which options)"
    show_change_link = False

    def get_queryset(self, request):
        # "sale": each row's header is str(refund), "Refund #13 of S-000008".
        return super().get_queryset(request).select_related("sale", "created_by")

    @admin.display(description="refund")
    def refund_link(self, obj):
        url = reverse("admin:refunds_refund_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.pk)

    @admin.display(description="total")
    def total_display(self, obj):
        return format_money(obj.total, obj.currency)

    @admin.display(description="options")
    def options_display(self, obj):
        return _options(obj)



class CustomerAlertInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Read-only view of a sale's alerts (their own admin is in alerts.py)."""

    model = CustomerAlert
    extra = 0
    fields = ["created_at", "event", "channel", "recipient", "status", "attempts",
              "sent_at", "last_error"]
    readonly_fields = cast("list[str]", fields)  # plain field names, no groups
    verbose_name_plural = "Customer alerts"


if TYPE_CHECKING:
    # The mixin is only ever mixed into a sale's ModelAdmin: type it as one.
    _SaleModelAdmin = admin.ModelAdmin[Sale]
else:
    _SaleModelAdmin = object


class SaleRefundsMixin(_SaleModelAdmin):
    """What a sale's page and lists gain from the refunds app."""

    change_form_template = "admin/sales/sale/change_form.html"
    change_list_template = "admin/sales/sale/change_list.html"
    actions = ["cancel_selected", "refund_selected_in_full"]

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), RefundInline, CustomerAlertInline]

    # -- the audit trail --------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        """A cancelled sale's History says, in one sentence, who cancelled it, through
        which door, with which options (the refund's row can't: nothing paid, none)."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.cancellation_or_none is None:
            return fieldsets
        return [
            (name, {**options, "fields": [*options["fields"], "cancellation_display"]})
            if name == "History" else (name, options)
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "cancellation_display"]

    @admin.display(description="cancellation")
    def cancellation_display(self, obj):
        cancellation = obj.cancellation_or_none
        return cancel_audit(cancellation) if cancellation is not None else ""

    # -- permissions ------------------------------------------------------------------

    def has_cancel_permission(self, request, obj=None):
        return request.user.has_perm(CANCEL_PERMISSION)

    def has_refund_permission(self, request, obj=None):
        return request.user.has_perm(REFUND_PERMISSION)

    # -- pages ------------------------------------------------------------------------

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/refund/", wrap(self.refund_page),
                 name=f"{prefix}_refund"),
            path("<path:object_id>/refund/preview/", wrap(self.refund_preview_page),
                 name=f"{prefix}_refund_preview"),
            path("<path:object_id>/cancel/", wrap(self.cancel_page),
                 name=f"{prefix}_cancel"),
            *super().get_urls(),
        ]

    def refund_page(self, request, object_id):
        return refusable(refund_view, self, request, object_id)

    def refund_preview_page(self, request, object_id):
        return refusable(refund_preview_view, self, request, object_id)

    def cancel_page(self, request, object_id):
        return refusable(cancel_view, self, request, object_id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        sale = self.get_object(request, object_id)
        if sale is not None and sale.status != SaleStatus.CANCELLED:
            prefix = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}"
            if self.has_refund_permission(request) and sale.refundable_amount > 0:
                extra_context["refund_url"] = reverse(f"{prefix}_refund", args=[sale.pk])
            if self.has_cancel_permission(request) and not (
                sale.amount_refunded or sale.refunded_units
            ):
                extra_context["cancel_url"] = reverse(f"{prefix}_cancel", args=[sale.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    # -- list actions (delete_selected's two POSTs) ------------------------------------

    def _too_many(self, request, queryset) -> bool:
        if queryset[: ACTION_LIMIT + 1].count() > ACTION_LIMIT:
            self.message_user(
                request, f"Select at most {ACTION_LIMIT} sales at a time.", messages.WARNING
            )
            return True
        return False

    def _confirmation(self, request, queryset, *, action, title, template, form, rows):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "action_name": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "queryset": queryset,
            "rows": rows,
            "form": form,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context)

    @admin.action(description="Cancel selected sales", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        if self._too_many(request, queryset):
            return None
        sales = list(queryset.select_related("customer").order_by("pk"))
        form = CancelForm(request.POST if request.POST.get("post") == "yes" else None)
        if request.POST.get("post") == "yes" and form.is_valid():
            done = 0
            for sale in sales:  # one service call, one transaction, per sale
                try:
                    result = sale_cancel(sale_id=sale.pk, **form.cancel_kwargs(),
                                         actor=request.user, source="admin")
                except DomainError as error:
                    self.message_user(request, f"{sale}: not cancelled — {error.message}",
                                      messages.ERROR)
                    continue
                if not result.already:
                    done += 1
                    self.log_change(request, sale, cancel_audit(result.sale.cancellation))
                self.message_user(request, cancel_summary(result),
                                  messages.SUCCESS if not result.already else messages.INFO)
            self.message_user(request, f"{done} of {len(sales)} sale(s) cancelled.",
                              messages.SUCCESS if done else messages.WARNING)
            return None
        rows = []
        for sale in sales:
            row = {"sale": sale, "problem": None, "plan": None}
            try:
                row["plan"] = sale_cancel_preview(sale_id=sale.pk)
                if row["plan"] is None:
                    row["problem"] = "Already cancelled: nothing will happen."
                else:
                    row["gives_back"] = format_money(row["plan"].total, sale.currency)
                    row["how"] = _how(row["plan"].allocations, sale.currency)
            except DomainError as error:
                row["problem"] = error.message
            rows.append(row)
        return self._confirmation(
            request, queryset, action="cancel_selected", title="Cancel these sales?",
            template="admin/sales/sale/cancel_selected_confirmation.html", form=form,
            rows=rows,
        )

    @admin.action(description="Refund selected sales in full", permissions=["refund"])
    def refund_selected_in_full(self, request, queryset):
        if self._too_many(request, queryset):
            return None
        sales = list(queryset.select_related("customer").order_by("pk"))
        form = BulkRefundForm(request.POST if request.POST.get("post") == "yes" else None)
        if request.POST.get("post") == "yes" and form.is_valid():
            options = form.options()
            done = 0
            for sale in sales:  # one service call, one transaction, per sale
                expected = request.POST.get(f"expected_{sale.pk}")
                try:
                    result = refund_create(
                        sale_id=sale.pk, items=None, options=options,
                        expected_refunded_amount=int(expected) if expected else None,
                        actor=request.user, source="admin",
                    )
                except DomainError as error:
                    self.message_user(request, f"{sale}: not refunded — {error.message}",
                                      messages.ERROR)
                    continue
                refund = result.refund
                done += 1
                self.log_change(request, sale, f"Refunded in full (refund #{refund.pk}).")
                self.message_user(
                    request,
                    f"{sale}: {format_money(refund.total, refund.currency)} refunded "
                    f"(refund #{refund.pk}, {refund.get_status_display().lower()}).",
                    messages.SUCCESS,
                )
            self.message_user(request, f"{done} of {len(sales)} sale(s) refunded in full.",
                              messages.SUCCESS if done else messages.WARNING)
            return None
        rows = []
        preview_options = form.options() if form.is_bound and form.is_valid() else None
        for sale in sales:
            row = {"sale": sale, "problem": None, "plan": None}
            try:
                plan = refund_preview(sale_id=sale.pk, items=None,
                                      **({"options": preview_options} if preview_options
                                         else {}))
                row["plan"] = plan
                row["gives_back"] = format_money(plan.total, sale.currency)
                row["how"] = _how(plan.allocations, sale.currency, amounts=True)
            except DomainError as error:
                row["problem"] = error.message
            rows.append(row)
        return self._confirmation(
            request, queryset, action="refund_selected_in_full",
            title="Refund these sales in full?",
            template="admin/sales/sale/refund_selected_confirmation.html", form=form,
            rows=rows,
        )


class SaleRefundsAdmin(SaleRefundsMixin, SaleAdmin):
    pass


class OrderRefundsAdmin(SaleRefundsMixin, OrderAdmin):
    pass


admin.site.unregister(Sale)
admin.site.unregister(Order)
admin.site.register(Sale, SaleRefundsAdmin)
admin.site.register(Order, OrderRefundsAdmin)

