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

from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from backoffice.errors import INVALID_RECORDS, UNKNOWN_FIELD, DomainError
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
    RefundStatus,
    RefundType,
    Source,
)
from .bulk_records import BatchTooLargeError, BulkRecord, parse_records, records_summary
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


class BulkRecordsInvalidError(DomainError):
    """Some records were refused; nothing was written. `records` lists them."""

    code = INVALID_RECORDS
    status = 400

    def __init__(self, message: str, *, extra: dict, records: list[dict],
                 code: str | None = None) -> None:
        super().__init__(message, extra=extra, code=code)
        self.records = records


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


def _run(records: Any, *, import_source: str, actor: Any, api_key: Any = None) -> BulkResult:
    parsed, errors = parse_records(records)
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
            f"{len(records_summary(errors, records)) or 1} record(s) refused, nothing written "
            f"({first_path}: {first[0]}).",
            extra=errors, records=records_summary(errors, records),
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
