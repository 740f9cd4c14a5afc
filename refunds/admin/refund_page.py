"""The refund page of a sale (line by line, unit by unit) and its live preview."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from backoffice.errors import DomainError, StaleRefundStateError
from backoffice.money import format_money

from ..services import refund_create, refund_preview
from .forms import RefundForm, minor_to_text
from .pages import (
    REFUND_PERMISSION,
    lines_and_payments,
    page_context,
    sale_change_url,
    sale_or_404,
)

# A refund form opened before the sale changed (someone else refunded it, or the same
# form was sent twice): shown again with the sale's figures as they are now.
STALE_FORM = ("The sale changed since you opened this page — check the figures and "
              "confirm again.")


def refund_view(model_admin, request, object_id):
    if not request.user.has_perm(REFUND_PERMISSION):
        raise PermissionDenied
    sale = sale_or_404(model_admin, request, object_id)
    lines, payments = lines_and_payments(sale)
    stale_from = None
    if request.method == "POST":
        form = RefundForm(request.POST, sale=sale, lines=lines, payments=payments)
        if form.is_valid():
            try:
                result = refund_create(
                    **form.service_kwargs(), actor=request.user, source="admin"
                )
            except DomainError as error:
                if isinstance(error, StaleRefundStateError):
                    # Not a dead end: the same entries again, against the sale as it is
                    # now, so that a second confirm refunds (or is refused on its merits).
                    stale_from = form.cleaned_data["expected_refunded_amount"]
                    sale = sale_or_404(model_admin, request, object_id)
                    lines, payments = lines_and_payments(sale)
                    data = request.POST.copy()
                    data["expected_refunded_amount"] = str(sale.amount_refunded)
                    form = RefundForm(data, sale=sale, lines=lines, payments=payments)
                    form.add_error(None, STALE_FORM)
                else:
                    # Shown once, on the form (on the row it names when it names one).
                    form.add_domain_error(error)
            else:
                refund = result.refund
                model_admin.log_change(
                    request, sale, f"Refunded {format_money(refund.total, refund.currency)} "
                    f"(refund #{refund.pk})."
                )
                credit_note = reverse(
                    f"{model_admin.admin_site.name}:refunds_refund_credit_note",
                    args=[refund.pk],
                )
                model_admin.message_user(
                    request,
                    format_html(
                        "Refund #{} of {} recorded ({}). <a href=\"{}\" target=\"_blank\">"
                        "Print the credit note</a>.",
                        refund.pk, format_money(refund.total, refund.currency),
                        refund.get_status_display().lower(), credit_note,
                    ),
                    messages.SUCCESS,
                )
                return redirect(sale_change_url(model_admin, sale))
    else:
        form = RefundForm(sale=sale, lines=lines, payments=payments)
    context = page_context(
        model_admin, request, sale, f"Refund {sale}",
        form=form,
        stale_from=(format_money(stale_from, sale.currency)
                    if stale_from is not None and stale_from != sale.amount_refunded
                    else None),
        line_rows=[(line, form[name]) for line, name in form.line_rows],
        fee_rows=[form[name] for name in form.fee_rows],
        payment_rows=[(p, form[name]) for p, name in form.payment_rows],
        preview_url=reverse(
            f"{model_admin.admin_site.name}:{model_admin.opts.app_label}_"
            f"{model_admin.opts.model_name}_refund_preview",
            args=[sale.pk],
        ),
    )
    return TemplateResponse(request, "admin/sales/sale/refund.html", context)


def refund_preview_view(model_admin, request, object_id):
    """The live preview: the same form, the preview service, an HTML fragment as JSON."""
    if not request.user.has_perm(REFUND_PERMISSION):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    sale = sale_or_404(model_admin, request, object_id)
    lines, payments = lines_and_payments(sale)
    form = RefundForm(request.POST, sale=sale, lines=lines, payments=payments)
    plan, error = None, None
    if form.is_valid():
        try:
            plan = refund_preview(**form.service_kwargs())
        except DomainError as exc:
            error = exc
            form.add_domain_error(exc)
    waiting = not form.is_bound or form.only_no_items
    # A service error placed on the rows it names is shown there, not also as a whole.
    placed = any(name != "__all__" for name in form.errors)
    html = render_to_string(
        "admin/sales/sale/refund_preview.html",
        {"plan": plan, "form": form, "error": error, "waiting": waiting, "sale": sale,
         "placed": placed},
        request=request,
    )
    body = {"ok": plan is not None, "html": html}
    if plan is not None:
        body["total"] = plan.total
        body["total_display"] = format_money(plan.total, sale.currency)
        body["allocations"] = {
            str(a.payment.pk): minor_to_text(a.amount, sale.currency) for a in plan.allocations
        }
    else:
        body["errors"] = {k: [str(e) for e in v] for k, v in form.errors.items()}
        if error is not None:
            body["code"] = error.code
    return JsonResponse(body)

