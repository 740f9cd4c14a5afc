"""The cancel page of a sale, and the sentences that tell staff what a cancel did."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from backoffice.errors import DomainError
from backoffice.money import format_money
from sales.models import SaleCancellation

from ..models import Refund, RefundStatus, Source
from ..services import sale_cancel, sale_cancel_preview
from .forms import CancelForm
from .pages import CANCEL_PERMISSION, page_context, sale_change_url, sale_or_404


def cancel_view(model_admin, request, object_id):
    if not request.user.has_perm(CANCEL_PERMISSION):
        raise PermissionDenied
    sale = sale_or_404(model_admin, request, object_id)
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = sale_cancel(sale_id=sale.pk, **form.cancel_kwargs(),
                                 actor=request.user, source="admin")
        except DomainError as error:
            form.add_error(None, error.message)  # shown once, on the page
        else:
            if not result.already:
                model_admin.log_change(request, sale, cancel_audit(result.sale.cancellation))
            model_admin.message_user(request, cancel_summary(result), messages.SUCCESS)
            return redirect(sale_change_url(model_admin, sale))
    plan, problem = None, None
    try:
        plan = sale_cancel_preview(sale_id=sale.pk)
        if plan is None:
            problem = f"{sale} is already cancelled."
    except DomainError as error:
        problem = error.message
    context = page_context(
        model_admin, request, sale, f"Cancel {sale}",
        form=form, plan=plan, problem=problem,
    )
    return TemplateResponse(request, "admin/sales/sale/cancel.html", context)


def refund_status_now(refund: Refund) -> str:
    """A refund's status as stored now, in words. The cancel service returns before the
    gateway settles the refund (on commit, maybe eagerly): the object it returned may
    still say pending when the row already says succeeded, or failed."""
    status = Refund.objects.filter(pk=refund.pk).values_list("status", flat=True).first()
    return RefundStatus(status or refund.status).label.lower()


# "through the <door>": SaleCancellation.source, Refund.source.
DOOR_WORDS: dict[str, str] = {
    Source.ADMIN: "admin", Source.API: "API", Source.COMMAND: "command line",
    Source.IMPORT: "import",
}


def cancel_audit(cancellation: SaleCancellation) -> str:
    """Who cancelled a sale, through which door, with which options, in one sentence:
    "Cancelled by clerk through the admin — reason Out of stock, units restocked,
    customer not alerted." What a cancel made before these were recorded did not keep
    (its door, its options) is left out. Reads cancellation.cancelled_by: select_related
    it."""
    head = "Cancelled"
    if cancellation.cancelled_by_id:
        head += f" by {cancellation.cancelled_by.get_username()}"  # type: ignore[union-attr]
    if cancellation.source:
        head += f" through the {DOOR_WORDS.get(cancellation.source, cancellation.source)}"
    details = []
    if cancellation.reason:
        details.append(f"reason {cancellation.get_reason_display()}")
    if cancellation.restock is not None:
        details.append("units restocked" if cancellation.restock else "units not restocked")
    if cancellation.alert is not None:
        details.append("customer alerted" if cancellation.alert else "customer not alerted")
    return f"{head} — {', '.join(details)}." if details else f"{head}."


def cancel_summary(result) -> str:
    sale = result.sale
    if result.already:
        return f"{sale}: already cancelled; nothing more was done."
    if result.refund is None:
        return f"{sale}: cancelled (nothing had been paid, so nothing was refunded)."
    refund = result.refund
    return (
        f"{sale}: cancelled; {format_money(refund.total, refund.currency)} refunded "
        f"({refund_status_now(refund)})."
    )

