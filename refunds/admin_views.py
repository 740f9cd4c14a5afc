"""The admin's own pages: refund a sale, its live preview, cancel a sale, print a credit
note, import a file of refunds. Added to the admins with `get_urls()` and wrapped in
`admin_site.admin_view` (login, staff, CSRF, no caching).

Each view parses the form, calls ONE service, renders. Permissions are checked here as
well as in the templates: a staff member without them gets a 403 at the URL, the
admin's own page (templates/403.html) saying so in plain words, with a way back.
"""

from __future__ import annotations

import json
import re

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
from sales.selectors import SALE_ID_PATTERN, sale_resolve_many

from .admin_forms import CancelForm, ImportUploadForm, RefundForm, minor_to_text
from .models import Refund, RefundLine, RefundPayment, RefundReason, RefundStatus, Source
from .services import refund_create, refund_preview, sale_cancel, sale_cancel_preview

REFUND_PERMISSION = "refunds.add_refund"
REASON_LABELS = {**dict(CancelReason.choices), **dict(RefundReason.choices)}
CANCEL_PERMISSION = "sales.cancel_sale"
# A refund form opened before the sale changed (someone else refunded it, or the same
# form was sent twice): shown again with the sale's figures as they are now.
STALE_FORM = ("The sale changed since you opened this page — check the figures and "
              "confirm again.")


def refusable(view, model_admin, request, *args):
    """Run an admin page; a PermissionDenied renders the admin's 403 page."""
    try:
        return view(model_admin, request, *args)
    except PermissionDenied:
        return permission_denied_page(model_admin, request, *args)


def permission_denied_page(model_admin, request, object_id=None):
    """templates/403.html with the admin's context, linking back to the object's page
    (the sale, the refund) or to the list."""
    site = model_admin.admin_site
    prefix = f"{site.name}:{model_admin.opts.app_label}_{model_admin.opts.model_name}"
    back_url = reverse(f"{prefix}_changelist")
    if object_id is not None and model_admin.has_view_permission(request):
        back_url = reverse(f"{prefix}_change", args=[object_id])
    context = {**site.each_context(request), "title": "Not allowed", "back_url": back_url}
    return TemplateResponse(request, "403.html", context, status=403)


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
        # The title names the sale ("Refund S-000123"): no subtitle repeating it.
        "subtitle": None,
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
    stale_from = None
    if request.method == "POST":
        form = RefundForm(request.POST, sale=sale, lines=lines, payments=payments)
        if form.is_valid():
            try:
                result = refund_create(
                    **form.service_kwargs(), actor=request.user, source="admin"
                )
            except DomainError as error:
                if error.code == "stale_refund_state":
                    # Not a dead end: the same entries again, against the sale as it is
                    # now, so that a second confirm refunds (or is refused on its merits).
                    stale_from = form.cleaned_data["expected_refunded_amount"]
                    sale = _sale_or_404(model_admin, request, object_id)
                    lines, payments = _lines_and_payments(sale)
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
                return redirect(_sale_url(model_admin, sale))
    else:
        form = RefundForm(sale=sale, lines=lines, payments=payments)
    context = _context(
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


# -- cancel ---------------------------------------------------------------------------


def cancel_view(model_admin, request, object_id):
    if not request.user.has_perm(CANCEL_PERMISSION):
        raise PermissionDenied
    sale = _sale_or_404(model_admin, request, object_id)
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = sale_cancel(sale_id=sale.pk, **form.cancel_kwargs(),
                                 actor=request.user, source="admin")
        except DomainError as error:
            form.add_error(None, error.message)  # shown once, on the page
        else:
            if not result.already:
                model_admin.log_change(request, sale, cancel_audit(result.sale))
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


def refund_status_now(refund: Refund) -> str:
    """A refund's status as stored now, in words. The cancel service returns before the
    gateway settles the refund (on commit, maybe eagerly): the object it returned may
    still say pending when the row already says succeeded, or failed."""
    status = Refund.objects.filter(pk=refund.pk).values_list("status", flat=True).first()
    return RefundStatus(status or refund.status).label.lower()


# "through the <door>": Sale.cancel_source, Refund.source.
DOOR_WORDS: dict[str, str] = {
    Source.ADMIN: "admin", Source.API: "API", Source.COMMAND: "command line",
    Source.IMPORT: "import",
}


def cancel_audit(sale: Sale) -> str:
    """Who cancelled a sale, through which door, with which options, in one sentence:
    "Cancelled by clerk through the admin — reason Out of stock, units restocked,
    customer not alerted." What a cancel made before these were recorded did not keep
    (its door, its options) is left out. Reads sale.cancelled_by: select_related it."""
    head = "Cancelled"
    if sale.cancelled_by_id:
        head += f" by {sale.cancelled_by.get_username()}"  # type: ignore[union-attr]
    if sale.cancel_source:
        head += f" through the {DOOR_WORDS.get(sale.cancel_source, sale.cancel_source)}"
    details = []
    if sale.cancel_reason:
        details.append(f"reason {REASON_LABELS.get(sale.cancel_reason, sale.cancel_reason)}")
    if sale.cancel_restock is not None:
        details.append("units restocked" if sale.cancel_restock else "units not restocked")
    if sale.cancel_alert is not None:
        details.append("customer alerted" if sale.cancel_alert else "customer not alerted")
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


# -- credit note ----------------------------------------------------------------------


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
        "reason_label": REASON_LABELS.get(refund.reason, refund.reason),
    }
    return TemplateResponse(request, "admin/refunds/refund/credit_note.html", context)


# -- bulk import ---------------------------------------------------------------------


_FIELD_WORDS = {
    "id": "record id", "sale_id": "sale", "order_id": "order", "line_items": "line items",
    "item_id": "item id", "refunded_at": "refunded at", "batch_id": "batch id",
}
_LINE_ITEM = re.compile(r"line_items\[(\d+)\](?:\.(\w+))?")


def field_in_words(path: str) -> str:
    """A record's field path as staff say it: "line_items[0].item_id" -> "line 1, item id"."""
    match = _LINE_ITEM.fullmatch(path)
    if match:
        words = f"line {int(match.group(1)) + 1}"
        if match.group(2):
            words += f", {_FIELD_WORDS.get(match.group(2), match.group(2).replace('_', ' '))}"
        return words
    if path in _FIELD_WORDS:
        return _FIELD_WORDS[path]
    # Anything else: numbered from 1, in words.
    text = re.sub(r"\[(\d+)\]", lambda m: f" {int(m.group(1)) + 1}", path)
    return text.replace("_", " ").replace(".", ", ").strip()


def _sale_numbers(records: list) -> dict[str, str]:
    """The number of each sale the records name (by id, number or external id)."""
    idents = set()
    for raw in records:
        if isinstance(raw, dict):
            ident = raw.get("sale_id") if raw.get("sale_id") not in (None, "") \
                else raw.get("order_id")
            if isinstance(ident, (int, str)) and not isinstance(ident, bool) \
                    and str(ident).strip():
                idents.add(str(ident).strip())
    if not idents:
        return {}
    sale_of, _ = sale_resolve_many(idents)  # the rule every door follows
    number_of = dict(Sale.objects.filter(pk__in=set(sale_of.values()))
                     .values_list("pk", "number"))
    found: dict[str, str] = {}
    for ident, sale_id in sale_of.items():
        if number := number_of.get(sale_id):
            found[ident] = number
    return found


def _report(records, error: DomainError | None) -> list[dict]:
    """One row per record of the file, numbered from 1: what it names (the sale by its
    number), and its problems in words (none = OK)."""
    problems: dict[int, dict] = {}
    general = []
    if error is not None:
        for item in getattr(error, "records", None) or []:
            problems[item["index"]] = item["errors"]
        if not problems:
            general = [error.message]
    records = records if isinstance(records, list) else []
    numbers = _sale_numbers(records)
    rows = []
    for i, raw in enumerate(records):
        raw = raw if isinstance(raw, dict) else {}
        items = raw.get("line_items")
        ident = raw.get("sale_id") if raw.get("sale_id") not in (None, "") \
            else raw.get("order_id")
        ident_text = str(ident).strip() if ident not in (None, "") else ""
        rows.append({
            "index": i + 1,
            "id": raw.get("id", "—"),
            "sale": numbers.get(ident_text) or ident_text or "—",
            "units": sum(it.get("quantity", 0) for it in items
                         if isinstance(it, dict) and isinstance(it.get("quantity"), int))
            if isinstance(items, list) else "—",
            "withdraw": isinstance(items, list) and not items,
            "reason": REASON_LABELS.get(raw.get("reason", ""), raw.get("reason", "")),
            "errors": [f"{field_in_words(field).capitalize()}: {msg}" if field != "record"
                       else msg
                       for field, msgs in problems.get(i, {}).items() for msg in msgs],
        })
    if general:
        rows.insert(0, {"index": None, "id": "—", "sale": "—", "units": "—",
                        "withdraw": False, "reason": "", "errors": general})
    return rows


def _refused(rows: list[dict], error: DomainError) -> str:
    """The report's headline: how many records were refused (the rows say why)."""
    bad = [r for r in rows if r["errors"] and r["index"] is not None]
    if not bad:
        return error.message
    return (f"{len(bad)} of {len(rows)} record{'s' if len(rows) != 1 else ''} refused; "
            "nothing was written. Correct the records marked below and upload the file "
            "again.")


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
                problem = f"Nothing was imported: {_refused(rows, error)}"
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
                    problem = _refused(rows, error)
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
