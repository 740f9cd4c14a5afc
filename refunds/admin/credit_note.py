"""A refund's credit note, printable."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404
from django.template.response import TemplateResponse

from backoffice.money import format_money
from sales.selectors import SALE_ID_PATTERN

from ..models import Refund, RefundLine, RefundPayment


def credit_note_view(model_admin, request, object_id):
    if not SALE_ID_PATTERN.fullmatch(str(object_id)):  # ids are plain digits
        raise Http404(f"No refund with id {object_id!r}.")
    refund = (
        Refund.objects.select_related("sale", "sale__customer", "created_by")
        .prefetch_related(
            Prefetch("lines", queryset=RefundLine.objects.select_related("sale_line")),
            Prefetch("allocations", queryset=RefundPayment.objects.select_related("payment")),
        )
        .filter(pk=object_id).first()
    )
    if refund is None:
        raise Http404(f"No refund with id {object_id}.")
    if not model_admin.has_view_permission(request, refund):
        raise PermissionDenied
    cur = refund.currency
    money = lambda amount: format_money(amount, cur)  # noqa: E731
    lines = [
        {"line": rl.sale_line, "quantity": rl.quantity, "rate": rl.sale_line.tax_rate * 100,
         "net": money(rl.amount), "tax": money(rl.tax_amount),
         "total": money(rl.amount + rl.tax_amount)}
        for rl in refund.lines.all()
    ]
    fees = [(label, money(amount)) for label, amount in (
        ("Processing fee", refund.processing_fee), ("Reseller fee", refund.reseller_fee),
        ("Shipping", refund.shipping_fee)) if amount]
    paid_back = [
        {"method": a.payment.get_method_display(), "amount": money(a.amount),
         "how": "online" if a.online else "offline", "status": a.get_status_display(),
         "reference": a.gateway_reference or a.payment.gateway_reference}
        for a in refund.allocations.all()
    ]
    context = {
        "shop_name": settings.SHOP_NAME,
        "refund": refund,
        "sale": refund.sale,
        "customer": refund.sale.customer,
        "lines": lines,
        "fees": fees,
        "paid_back": paid_back,
        "lines_amount": money(refund.lines_amount),
        "tax_amount": money(refund.tax_amount),
        "total": money(refund.total),
        "is_balance": refund.type == "balance_refund",
        "number": f"CN-{refund.pk:06d}",
    }
    return TemplateResponse(request, "admin/refunds/refund/credit_note.html", context)

