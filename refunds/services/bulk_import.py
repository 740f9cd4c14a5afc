"""Bulk refund records (DESIGN §4): validate, or upsert up to 1000 at once.

A record names a sale (`sale_id`, or `order_id`: an id, number or external id) and the
units given back (`line_items`). Records are keyed by (import source, `id`): a record
sent again replaces the earlier refund — the earlier one is withdrawn and its counters
given back, a new refund row written, in the same transaction, so the counters move by
the difference — and an empty `line_items` withdraws it. All or nothing.

The amounts are computed by the same `plan_refund` as every other refund, against the
locked rows kept in memory; what each record moves is its ledger effect (a replaced
record: the new one's, less the earlier one's), applied in memory as it goes so the next
record sees it, and all of it written at the end by `ledger_write`; the writes are
batched, so the number of queries does not grow with the number of records.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backoffice.api.fields import ID_MAX, INT_MAX, YES_NO_INVALID, is_id, parse_yes_no
from backoffice.errors import UNKNOWN_FIELD, DomainError, unknown_keys
from backoffice.errors import UNKNOWN_FIELD_MESSAGE as UNKNOWN_MESSAGE
from sales.models import Payment, Sale, SaleLine
from sales.selectors import LockedSale, sale_resolve_many

from ..models import (
    AllocationStatus,
    ImportOutcome,
    Refund,
    RefundImport,
    RefundLine,
    RefundPayment,
    RefundReason,
    RefundStatus,
    RefundType,
    Source,
)
from .ledger import (
    Effect,
    effect_of_plan,
    effect_of_refund,
    ledger_write,
    rows_of_plan,
    sum_effects,
)
from .plan import RefundOptions, plan_refund
from .refund import refund_row, refusal_for

DEFAULT_IMPORT_SOURCE = "bulk"


class BatchTooLargeError(DomainError):
    code = "batch_too_large"
    status = 413


class BulkRecordsInvalidError(DomainError):
    """Some records were refused; nothing was written. `records` lists them."""

    code = "invalid_records"
    status = 400

    def __init__(self, message: str, *, extra: dict, records: list[dict],
                 code: str | None = None) -> None:
        super().__init__(message, extra=extra, code=code)
        self.records = records


@dataclass
class BulkRecord:
    index: int
    id: str
    sale_ident: str
    sale_field: str
    line_items: list[tuple[int, int]]
    refunded_at: datetime | None = None
    reason: str = RefundReason.REQUESTED_BY_CUSTOMER
    restock: bool = True
    note: str = ""
    batch_id: str = ""


@dataclass
class BulkResult:
    count: int
    created: int = 0
    replaced: int = 0
    withdrawn: int = 0
    unchanged: int = 0
    refund_ids: list[int] = field(default_factory=list)
    import_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": "VALID", "count": self.count, "created": self.created,
            "replaced": self.replaced, "withdrawn": self.withdrawn,
            "unchanged": self.unchanged, "import_id": self.import_id,
        }


class _Rollback(Exception):
    pass


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


# Ids are 1..ID_MAX (a bigint), quantities 1..INT_MAX: a larger integer is refused on
# its field, before it reaches a query (where SQLite's integers would overflow).
# Text PostgreSQL cannot store (NUL) or UTF-8 cannot encode (a lone surrogate, which
# JSON's "\ud800" escapes can carry): refused on its field, as DRF's CharField does.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _text_problem(value: Any) -> str | None:
    """Why a string cannot be stored as text (None: it can)."""
    if not isinstance(value, str):
        return None
    bad = _UNSTORABLE.search(value)
    if bad is None:
        return None
    if bad[0] == "\x00":
        return "Null characters are not allowed."
    return f"Surrogate characters are not allowed: U+{ord(bad[0]):X}."


# What a record and its line items may carry: anything else is refused by name
# (`[3].line_items[0].price`), never ignored (backoffice.api.strict).
RECORD_KEYS = frozenset({"id", "sale_id", "order_id", "refunded_at", "reason", "restock",
                         "note", "batch_id", "line_items"})
LINE_ITEM_KEYS = frozenset({"item_id", "quantity"})


def _unknown(raw: dict, known: frozenset[str], prefix: str) -> dict[str, list[str]]:
    return {f"{prefix}.{key}": [UNKNOWN_MESSAGE] for key in unknown_keys(raw, known)}


def _parse(records: Any) -> tuple[list[BulkRecord], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(records, list):
        return [], {"records": ["Send a JSON array of refund records."]}
    limit = settings.BULK_IMPORT_MAX_RECORDS
    if len(records) > limit:
        raise BatchTooLargeError(
            f"A batch holds at most {limit} records; this one has {len(records)}.",
            extra={"records": [f"At most {limit} records."]},
        )
    parsed: list[BulkRecord] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(records):
        p = f"[{i}]"
        if not isinstance(raw, dict):
            errors[p] = ["Each record must be an object."]
            continue
        bad: dict[str, list[str]] = _unknown(raw, RECORD_KEYS, p)
        for name in ("id", "sale_id", "order_id", "note", "batch_id", "reason"):
            problem = _text_problem(raw.get(name))
            if problem:
                bad[f"{p}.{name}"] = [problem]
        rid = raw.get("id")
        if _is_int(rid):
            rid = str(rid)
        if f"{p}.id" in bad:
            pass
        elif not isinstance(rid, str) or not rid.strip() or len(rid) > 128:
            bad[f"{p}.id"] = ["Required: a string of at most 128 characters."]
        elif rid in seen:
            bad[f"{p}.id"] = [f"Same id as record {seen[rid]}."]
        else:
            seen[rid] = i
        sale_field = "sale_id" if raw.get("sale_id") not in (None, "") else "order_id"
        ident = raw.get(sale_field)
        if f"{p}.{sale_field}" in bad:
            pass
        elif _is_int(ident) and not is_id(ident):
            bad[f"{p}.{sale_field}"] = [f"An id is an integer from 1 to {ID_MAX}."]
        elif not (_is_int(ident) or (isinstance(ident, str) and ident.strip())):
            bad[f"{p}.sale_id"] = ["Required: sale_id or order_id (an id or external id)."]
        items: list[tuple[int, int]] = []
        line_items = raw.get("line_items")
        if not isinstance(line_items, list):
            bad[f"{p}.line_items"] = ["Required: a list (empty withdraws the record)."]
        else:
            for j, item in enumerate(line_items):
                q = f"{p}.line_items[{j}]"
                if not isinstance(item, dict):
                    bad[q] = ["Each line item must be an object."]
                    continue
                bad.update(_unknown(item, LINE_ITEM_KEYS, q))
                item_id, quantity = item.get("item_id"), item.get("quantity")
                if not is_id(item_id):
                    bad[f"{q}.item_id"] = [
                        f"Required: the sale line's id (an integer from 1 to {ID_MAX})."
                    ]
                if not _is_int(quantity) or not 1 <= quantity <= INT_MAX:
                    bad[f"{q}.quantity"] = [
                        f"Required: a whole number from 1 to {INT_MAX}."
                    ]
                if is_id(item_id) and _is_int(quantity) and not any(
                        k.startswith(q) for k in bad):
                    items.append((item_id, quantity))
        refunded_at = None
        if raw.get("refunded_at") not in (None, ""):
            value = raw["refunded_at"]
            try:
                refunded_at = parse_datetime(value) if isinstance(value, str) else None
            except ValueError:
                refunded_at = None
            if refunded_at is not None and timezone.is_naive(refunded_at):
                refunded_at = refunded_at.replace(tzinfo=UTC)
            try:  # stored in UTC: 0001-01-01T00:00+01:00 is not a date any more
                refunded_at = refunded_at.astimezone(UTC) if refunded_at else None
            except (OverflowError, ValueError):
                refunded_at = None
            if refunded_at is None:
                bad[f"{p}.refunded_at"] = ["An ISO 8601 date and time, e.g. 2026-11-20T10:00:00Z."]
        reason = raw.get("reason") or RefundReason.REQUESTED_BY_CUSTOMER
        if f"{p}.reason" not in bad and reason not in RefundReason.values:
            bad[f"{p}.reason"] = [f"One of {', '.join(RefundReason.values)}."]
        # The API's rule for booleans: true/false or "yes"/"no".
        restock = parse_yes_no(raw.get("restock", True))
        if restock is None:
            bad[f"{p}.restock"] = [YES_NO_INVALID]
        note = raw.get("note") or ""
        batch_id = raw.get("batch_id") or ""
        if not isinstance(note, str) or len(note) > BULK_NOTE_MAX_LENGTH:
            bad[f"{p}.note"] = [f"A string of at most {BULK_NOTE_MAX_LENGTH} characters."]
        if not isinstance(batch_id, str) or len(str(batch_id)) > 128:
            bad.setdefault(f"{p}.batch_id", ["A string of at most 128 characters."])
        if bad:
            errors.update(bad)
            continue
        assert restock is not None  # refused above otherwise
        parsed.append(BulkRecord(
            index=i, id=str(rid), sale_ident=str(ident).strip(), sale_field=sale_field,
            line_items=items, refunded_at=refunded_at, reason=reason, restock=restock,
            note=note, batch_id=batch_id,
        ))
    return parsed, errors


# A staff note per record: capped so that a batch of 1000 records stays well inside the
# API's body limit (settings.DATA_UPLOAD_MAX_MEMORY_SIZE).
BULK_NOTE_MAX_LENGTH = 1000


def _resolve_sales(parsed: list[BulkRecord]) -> tuple[dict[str, int], dict[str, DomainError]]:
    return sale_resolve_many({r.sale_ident for r in parsed})


def _lock(sale_ids: set[int]) -> dict[int, LockedSale]:
    """Lock every affected sale (pk order, one query), then their lines, then payments."""
    if not sale_ids:
        return {}
    sales = list(
        Sale.objects.select_for_update(of=("self",)).select_related("customer")
        .filter(pk__in=sale_ids).order_by("pk")
    )
    locked = {s.pk: LockedSale(sale=s, lines=[], payments=[]) for s in sales}
    for line in SaleLine.objects.select_for_update().filter(sale_id__in=sale_ids).order_by("pk"):
        locked[line.sale_id].lines.append(line)
    for pay in Payment.objects.select_for_update().filter(sale_id__in=sale_ids).order_by("pk"):
        locked[pay.sale_id].payments.append(pay)
    return locked


def _same(old: Refund, record: BulkRecord, sale_id: int) -> bool:
    return (
        old.withdrawn_at is None
        and old.sale_id == sale_id
        and sorted((ln.sale_line_id, ln.quantity) for ln in old.lines.all())
        == sorted(record.line_items)
        and old.restock == record.restock
        and old.reason == record.reason
        and old.returned_at == record.refunded_at
        and old.note == record.note
        and old.batch_id == record.batch_id
    )


def _remap(exc: DomainError, record: BulkRecord) -> dict[str, list[str]]:
    p = f"[{record.index}]"
    if not exc.extra:
        return {p: [exc.message]}
    return {
        f"{p}.{key.replace('items[', 'line_items[')}": list(msgs)
        for key, msgs in exc.extra.items()
    }


def _summary(errors: dict[str, list[str]], records: list) -> list[dict]:
    per: dict[int, dict[str, list[str]]] = defaultdict(dict)
    for path, msgs in errors.items():
        if not path.startswith("["):
            continue
        index = int(path[1:path.index("]")])
        rest = path[path.index("]") + 1:].lstrip(".") or "record"
        per[index][rest] = msgs
    out = []
    for index in sorted(per):
        raw = records[index] if isinstance(records, list) and index < len(records) else None
        rid = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(rid, str):  # kept as sent, less what no text column can hold
            rid = _UNSTORABLE.sub("\ufffd", rid)[:128]
        elif not _is_int(rid):
            rid = None  # the errors say what is wrong with it
        out.append({"index": index, "id": rid, "errors": per[index]})
    return out


def _run(records: Any, *, import_source: str, actor: Any, api_key: Any = None) -> BulkResult:
    parsed, errors = _parse(records)
    result = BulkResult(count=len(records) if isinstance(records, list) else 0)
    sale_of, unresolved = _resolve_sales(parsed)
    existing = {
        r.external_id: r
        for r in Refund.objects.filter(
            import_source=import_source, external_id__in=[r.id for r in parsed]
        ).prefetch_related("lines", "allocations")
    }
    sale_ids = {sale_of[r.sale_ident] for r in parsed if r.sale_ident in sale_of}
    sale_ids |= {r.sale_id for r in existing.values() if r.withdrawn_at is None}
    locked = _lock(sale_ids)
    effects: list[Effect] = []  # what the batch moves, record by record
    now = timezone.now()
    to_detach: list[int] = []   # earlier rows replaced: external id freed, withdrawn
    to_withdraw: list[int] = []  # earlier rows withdrawn, id kept
    new_refunds: list[tuple[Refund, Any]] = []

    for record in parsed:
        sale_id = sale_of.get(record.sale_ident)
        if sale_id is None:
            problem = unresolved.get(record.sale_ident)
            errors[f"[{record.index}].{record.sale_field}"] = [
                problem.message if problem is not None
                else f"No sale with id, number or external id {record.sale_ident!r}."
            ]
            continue
        old = existing.get(record.id)
        if old is not None and old.status == RefundStatus.PENDING:
            errors[f"[{record.index}].id"] = ["Its earlier refund is still settling; retry later."]
            continue
        live = old if old is not None and old.withdrawn_at is None and (
            old.status == RefundStatus.SUCCEEDED) else None
        if live is not None and _same(live, record, sale_id):
            result.unchanged += 1
            continue
        if not record.line_items and live is None:
            result.unchanged += 1  # nothing to withdraw
            continue
        if live is not None:  # given back first (in memory): the new one replaces it
            back = effect_of_refund(live, locked[live.sale_id]).reversed()
            back.apply([locked[live.sale_id]])
            effects.append(back)
        if not record.line_items:
            assert live is not None  # an empty record with nothing live was skipped
            to_withdraw.append(live.pk)
            result.withdrawn += 1
            continue
        options = RefundOptions(
            type=RefundType.REFUND, restock=record.restock, alert_customer=False,
            online=False, reason=record.reason, note=record.note, batch_id=record.batch_id,
            returned_at=record.refunded_at,
        )
        try:
            plan = plan_refund(locked[sale_id], items=record.line_items, options=options,
                               splits=None, expected_refunded_amount=None)
        except DomainError as exc:
            errors.update(_remap(exc, record))
            continue
        effect = effect_of_plan(plan)
        effect.apply([rows_of_plan(plan)])  # the next record sees it
        effects.append(effect)
        refund = refund_row(plan, refund_type=RefundType.REFUND, actor=actor,
                            source=Source.IMPORT, external_id=record.id,
                            import_source=import_source, now=now, api_key=api_key)
        new_refunds.append((refund, plan))
        if old is not None:
            to_detach.append(old.pk)
            result.replaced += 1
        else:
            result.created += 1

    if errors:
        first_path, first = next(iter(errors.items()))
        unknown = [path for path, msgs in errors.items() if UNKNOWN_MESSAGE in msgs]
        raise BulkRecordsInvalidError(
            f"{len(_summary(errors, records)) or 1} record(s) refused, nothing written "
            f"({first_path}: {first[0]}).",
            extra=errors, records=_summary(errors, records),
            code=UNKNOWN_FIELD if unknown else None,
        )

    # The writes: a fixed number of queries, whatever the number of records.
    if to_detach:
        Refund.objects.filter(pk__in=to_detach).update(
            external_id=None, withdrawn_at=Coalesce("withdrawn_at", Value(now))
        )
    if to_withdraw:
        Refund.objects.filter(pk__in=to_withdraw).update(withdrawn_at=now)
    if new_refunds:
        Refund.objects.bulk_create([r for r, _ in new_refunds], batch_size=500)
        RefundLine.objects.bulk_create(
            [RefundLine(refund=r, sale_line=pl.line, quantity=pl.quantity, amount=pl.amount,
                        tax_amount=pl.tax_amount)
             for r, plan in new_refunds for pl in plan.lines],
            batch_size=1000,
        )
        RefundPayment.objects.bulk_create(
            [RefundPayment(refund=r, payment=a.payment, amount=a.amount, online=False,
                           status=AllocationStatus.SUCCEEDED, settled_at=now)
             for r, plan in new_refunds for a in plan.allocations],
            batch_size=1000,
        )
        result.refund_ids = [r.pk for r, _ in new_refunds]
    ledger_write(sum_effects(effects), {pk: ls.sale for pk, ls in locked.items()})
    return result


def refunds_bulk_validate(*, records: Any, import_source: str = DEFAULT_IMPORT_SOURCE,
                          actor: Any = None) -> BulkResult:
    """Check a batch exactly as the import would (the same code, rolled back): writes nothing."""
    outcome: dict[str, BulkResult] = {}
    try:
        with transaction.atomic():
            outcome["result"] = _run(records, import_source=import_source, actor=actor)
            raise _Rollback
    except _Rollback:
        pass
    except IntegrityError as exc:
        raise refusal_for(exc) from exc
    return outcome["result"]


def refunds_bulk_import(*, records: Any, import_source: str = DEFAULT_IMPORT_SOURCE,
                        actor: Any = None, door: str = Source.API,
                        api_key: Any = None) -> BulkResult:
    """Upsert a batch, all or nothing; the RefundImport row records the outcome.

    `api_key`: the backoffice.ApiKey the batch came through (stored on the import row,
    refused or not, and on each of its refunds), or None (admin page, command).
    """
    count = len(records) if isinstance(records, list) else 0
    who = {"created_by": actor if getattr(actor, "pk", None) else None,
           "api_key": api_key if getattr(api_key, "pk", None) else None}
    try:
        with transaction.atomic():
            result = _run(records, import_source=import_source, actor=actor,
                          api_key=who["api_key"])
            row = RefundImport.objects.create(
                source=door, count=count, outcome=ImportOutcome.SUCCESS, **who,
            )
            result.import_id = row.pk
    except DomainError as exc:
        refunds_import_refused(records=records, error=exc, actor=actor, door=door,
                               api_key=api_key)
        raise
    except IntegrityError as exc:
        error = refusal_for(exc)
        refunds_import_refused(records=records, error=error, actor=actor, door=door,
                               api_key=api_key)
        raise error from exc
    return result


def refunds_import_refused(*, records: Any, error: DomainError, actor: Any = None,
                           door: str = Source.API, api_key: Any = None) -> RefundImport:
    """Record a batch refused as a whole (GET /refunds/status's last_failure): by the
    import itself, or by a door that parses its own words first (a dialect)."""
    return RefundImport.objects.create(
        source=door, count=len(records) if isinstance(records, list) else 0,
        outcome=ImportOutcome.FAILURE,
        created_by=actor if getattr(actor, "pk", None) else None,
        api_key=api_key if getattr(api_key, "pk", None) else None,
        errors=getattr(error, "records", None) or [{"error": error.message, "code": error.code}],
    )


def refunds_import_status(*, import_source: str | None = None,
                          door: str | None = None) -> dict[str, Any]:
    """Figures for GET /refunds/status: live imported refunds and the last batches.
    `import_source`: count only that source's refunds; `door`: only the batches that
    came through that door (a dialect's own, e.g. `klar`)."""
    live = Refund.objects.filter(
        source=Source.IMPORT, external_id__isnull=False, withdrawn_at__isnull=True
    )
    if import_source:
        live = live.filter(import_source=import_source)
    batches = RefundImport.objects.all()
    if door:
        batches = batches.filter(source=door)
    last = batches.order_by("-received_at", "-pk").first()
    success = batches.filter(outcome=ImportOutcome.SUCCESS).order_by(
        "-received_at", "-pk").values_list("received_at", flat=True).first()
    failure = batches.filter(outcome=ImportOutcome.FAILURE).order_by(
        "-received_at", "-pk").values_list("received_at", flat=True).first()
    return {
        "total": live.count(),
        "last_batch_count": last.count if last else 0,
        "last_success": success,
        "last_failure": failure,
    }


__all__ = [
    "BatchTooLargeError",
    "BulkRecordsInvalidError",
    "BulkResult",
    "refunds_bulk_import",
    "refunds_bulk_validate",
    "refunds_import_refused",
    "refunds_import_status",
]
