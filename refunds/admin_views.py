"""The admin's own pages: refund a sale, its live preview, cancel a sale, print a credit
note, import a file of refunds. Added to the admins with `get_urls()` and wrapped in
`admin_site.admin_view` (login, staff, CSRF, no caching).

Each view parses the form, calls ONE service, renders. Permissions are checked here as
well as in the templates: a staff member without them gets a 403 at the URL.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from backoffice.errors import DomainError
from backoffice.money import format_money
from sales.models import CancelReason, Sale

from .admin_forms import CancelForm, ImportUploadForm, RefundForm, minor_to_text
from .models import Refund, RefundLine, RefundPayment, RefundReason
from .services import refund_create, refund_preview, sale_cancel, sale_cancel_preview

REFUND_PERMISSION = "refunds.add_refund"
REASON_LABELS = {**dict(CancelReason.choices), **dict(RefundReason.choices)}
CANCEL_PERMISSION = "sales.cancel_sale"


def _sale_or_404(model_admin, request, object_id) -> Sale:
    sale = model_admin.get_object(request, object_id)
    if sale is None:
        raise Http404(f"No sale with id {object_id}.")
    if not model_admin.has_view_permission(request, sale):
        raise PermissionDenied
    return sale


def _sale_url(model_admin, sale: Sale) -> str:
    opts = model_admin.opts
    return reverse(
        f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
        args=[sale.pk],
    )


def _context(model_admin, request, sale: Sale | None, title: str, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
        "title": title,
        "subtitle": str(sale) if sale else None,
        "original": sale,
        "sale": sale,
        "sale_url": _sale_url(model_admin, sale) if sale else None,
        "media": model_admin.media,
        **extra,
    }


def _lines_and_payments(sale: Sale):
    return list(sale.lines.order_by("pk")), list(sale.payments.order_by("pk"))


# -- refund ---------------------------------------------------------------------------


def refund_view(model_admin, request, object_id):
    if not request.user.has_perm(REFUND_PERMISSION):
        raise PermissionDenied
    sale = _sale_or_404(model_admin, request, object_id)
    lines, payments = _lines_and_payments(sale)
    if request.method == "POST":
        form = RefundForm(request.POST, sale=sale, lines=lines, payments=payments)
        if form.is_valid():
            try:
                result = refund_create(
                    **form.service_kwargs(), actor=request.user, source="admin"
                )
            except DomainError as error:
                form.add_domain_error(error)
                model_admin.message_user(
                    request, f"Nothing was refunded: {error.message}", messages.ERROR
                )
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
                return redirect(_sale_url(model_admin, sale))
    else:
        form = RefundForm(sale=sale, lines=lines, payments=payments)
    context = _context(
        model_admin, request, sale, f"Refund {sale}",
        form=form,
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
    sale = _sale_or_404(model_admin, request, object_id)
    lines, payments = _lines_and_payments(sale)
    form = RefundForm(request.POST, sale=sale, lines=lines, payments=payments)
    plan, error = None, None
    if form.is_valid():
        try:
            plan = refund_preview(**form.service_kwargs())
        except DomainError as exc:
            error = exc
            form.add_domain_error(exc)
    waiting = not form.is_bound or form.only_no_items
    html = render_to_string(
        "admin/sales/sale/refund_preview.html",
        {"plan": plan, "form": form, "error": error, "waiting": waiting, "sale": sale },
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


# -- cancel ---------------------------------------------------------------------------


def cancel_view(model_admin, request, object_id):
    if not request.user.has_perm(CANCEL_PERMISSION):
        raise PermissionDenied
    sale = _sale_or_404(model_admin, request, object_id)
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = sale_cancel(sale_id=sale.pk, **form.cancel_kwargs(),
                                 actor=request.user, source="admin")
        except DomainError as error:
            form.add_error(None, error.message)
            model_admin.message_user(
                request, f"{sale} was not cancelled: {error.message}", messages.ERROR
            )
        else:
            if not result.already:
                model_admin.log_change(request, sale, f"Cancelled ({data['reason']}).")
            model_admin.message_user(request, cancel_summary(result), messages.SUCCESS)
            return redirect(_sale_url(model_admin, sale))
    plan, problem = None, None
    try:
        plan = sale_cancel_preview(sale_id=sale.pk)
        if plan is None:
            problem = f"{sale} is already cancelled."
    except DomainError as error:
        problem = error.message
    context = _context(
        model_admin, request, sale, f"Cancel {sale}",
        form=form, plan=plan, problem=problem,
    )
    return TemplateResponse(request, "admin/sales/sale/cancel.html", context)


def cancel_summary(result) -> str:
    sale = result.sale
    if result.already:
        return f"{sale}: already cancelled; nothing more was done."
    if result.refund is None:
        return f"{sale}: cancelled (nothing had been paid, so nothing was refunded)."
    refund = result.refund
    return (
        f"{sale}: cancelled; {format_money(refund.total, refund.currency)} refunded "
        f"({refund.get_status_display().lower()})."
    )


# -- credit note ----------------------------------------------------------------------


def credit_note_view(model_admin, request, object_id):
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
        "reason_label": REASON_LABELS.get(refund.reason, refund.reason),
    }
    return TemplateResponse(request, "admin/refunds/refund/credit_note.html", context)


# -- bulk import ---------------------------------------------------------------------


def _report(records, error: DomainError | None) -> list[dict]:
    """One row per record of the file: what it names, and its problems (none = OK)."""
    problems: dict[int, dict] = {}
    general = []
    if error is not None:
        for item in getattr(error, "records", None) or []:
            problems[item["index"]] = item["errors"]
        if not problems:
            general = [error.message]
    rows = []
    for i, raw in enumerate(records if isinstance(records, list) else []):
        raw = raw if isinstance(raw, dict) else {}
        items = raw.get("line_items")
        rows.append({
            "index": i,
            "id": raw.get("id", "—"),
            "sale": raw.get("sale_id") or raw.get("order_id") or "—",
            "units": sum(it.get("quantity", 0) for it in items
                         if isinstance(it, dict) and isinstance(it.get("quantity"), int))
            if isinstance(items, list) else "—",
            "withdraw": isinstance(items, list) and not items,
            "reason": raw.get("reason", ""),
            "errors": [f"{field}: {msg}" if field != "record" else msg
                       for field, msgs in problems.get(i, {}).items() for msg in msgs],
        })
    if general:
        rows.insert(0, {"index": "—", "id": "—", "sale": "—", "units": "—", "withdraw": False,
                        "reason": "", "errors": general})
    return rows


def import_view(model_admin, request):
    """Upload a JSON file → validation report per record → confirm → result.

    The same service as `POST /refunds/validate` and `/refunds/json` and the
    `import_refunds` command: `refunds_bulk_validate`, then `refunds_bulk_import`.
    """
    if not (request.user.has_perm(REFUND_PERMISSION)
            and request.user.has_perm("refunds.add_refundimport")):
        raise PermissionDenied
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    from .services.bulk_import import refunds_bulk_import, refunds_bulk_validate

    form = ImportUploadForm()
    records, rows, result, problem, valid = None, None, None, None, False
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        # Second step: the records come back from the report page as they were checked.
        try:
            records = json.loads(request.POST.get("records", ""))
        except ValueError:
            problem = "The checked file could not be read back; upload it again."
        else:
            try:
                result = refunds_bulk_import(records=records, actor=request.user,
                                             door="admin")
            except DomainError as error:
                rows = _report(records, error)
                problem = f"Nothing was imported: {error.message}"
                model_admin.message_user(request, problem, messages.ERROR)
            else:
                model_admin.message_user(
                    request,
                    f"Imported {result.count} record(s): {result.created} new, "
                    f"{result.replaced} replaced, {result.withdrawn} withdrawn, "
                    f"{result.unchanged} unchanged.",
                    messages.SUCCESS,
                )
    elif request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                records = json.loads(form.cleaned_data["file"].read().decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                problem = f"The file is not valid JSON ({exc})."
            else:
                try:
                    refunds_bulk_validate(records=records, actor=request.user)
                except DomainError as error:
                    rows = _report(records, error)
                    problem = error.message
                else:
                    rows = _report(records, None)
                    valid = True
    context = _context(
        model_admin, request, None, "Import refunds",
        form=form, rows=rows, result=result, problem=problem, valid=valid,
        records_json=json.dumps(records) if valid else "",
        changelist_url=reverse(f"{model_admin.admin_site.name}:refunds_refund_changelist"),
        imports_url=reverse(f"{model_admin.admin_site.name}:refunds_refundimport_changelist"),
    )
    return TemplateResponse(request, "admin/refunds/refund/import.html", context)
