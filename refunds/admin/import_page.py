"""Import a file of refunds: upload, a report per record, confirm, the result."""

from __future__ import annotations

import json
import re

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import reverse

from backoffice.errors import DomainError
from sales.models import Sale
from sales.selectors import sale_resolve_many

from ..models import reason_label
from .forms import ImportUploadForm
from .pages import REFUND_PERMISSION, page_context

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
            "reason": reason_label(raw.get("reason", "")),
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
    from ..services.bulk_import import refunds_bulk_import, refunds_bulk_validate

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
    context = page_context(
        model_admin, request, None, "Import refunds",
        form=form, rows=rows, result=result, problem=problem, valid=valid,
        records_json=json.dumps(records) if valid else "",
        changelist_url=reverse(f"{model_admin.admin_site.name}:refunds_refund_changelist"),
        imports_url=reverse(f"{model_admin.admin_site.name}:refunds_refundimport_changelist"),
    )
    return TemplateResponse(request, "admin/refunds/refund/import.html", context)
