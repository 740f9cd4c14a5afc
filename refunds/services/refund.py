"""Refund a sale: in full or line by line, unit by unit; and preview the same.

`_plan` is the one computation: the preview runs it on an unlocked snapshot, the refund
on the locked rows, so the two can never disagree. Amounts always come from the sale.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from backoffice.errors import (
    ConstraintViolationError,
    DomainError,
    IdempotencyKeyReusedError,
    NoCustomerForBalanceError,
    NothingToRefundError,
    RefundExceedsPaidError,
    RefundQuantityExceededError,
    SaleCancelledError,
    SaleNotRefundableError,
    SplitExceedsPaymentError,
    SplitMismatchError,
    StaleRefundStateError,
    UnknownLineError,
    UnknownPaymentError,
    ValidationFailedError,
)
from backoffice.money import format_money, largest_remainder, part
from sales.models import Customer, Payment, Sale, SaleKind, SaleLine, SaleStatus
from sales.selectors import LockedSale, sale_lock, sale_snapshot
from sales.services import stock_move

from ..models import (
    AlertEvent,
    AllocationStatus,
    CustomerAlert,
    Refund,
    RefundLine,
    RefundPayment,
    RefundReason,
    RefundStatus,
    RefundType,
    Source,
)
from .alerts import alerts_build, alerts_queue

log = logging.getLogger(__name__)
ItemsArg = Mapping[int, int] | Sequence[tuple[int, int]] | None
OFFLINE_GATEWAYS = {"", "manual"}


@dataclass(frozen=True)
class RefundOptions:
    """What the caller may choose (DESIGN §3.4). None = the documented default."""

    type: str = RefundType.REFUND
    restock: bool = True
    refund_processing_fee: bool | None = None
    refund_reseller_fee: bool | None = None
    refund_shipping: bool | None = None
    alert_customer: bool = False
    online: bool = True
    reason: str = RefundReason.REQUESTED_BY_CUSTOMER
    note: str = ""
    batch_id: str = ""
    returned_at: datetime | None = None


@dataclass
class PlannedLine:
    line: SaleLine
    quantity: int
    amount: int
    tax_amount: int

    @property
    def total(self) -> int:
        return self.amount + self.tax_amount


@dataclass
class PlannedAllocation:
    payment: Payment
    amount: int
    online: bool


@dataclass
class RefundPlan:
    sale: Sale
    options: RefundOptions
    lines: list[PlannedLine]
    allocations: list[PlannedAllocation]
    processing_fee: int = 0
    reseller_fee: int = 0
    shipping_fee: int = 0
    empties_sale: bool = False
    # A cancellation gives back what was paid, which may be less than what was charged.
    total_override: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def lines_amount(self) -> int:
        return sum(pl.amount for pl in self.lines)

    @property
    def tax_amount(self) -> int:
        return sum(pl.tax_amount for pl in self.lines)

    @property
    def fees(self) -> int:
        return self.processing_fee + self.reseller_fee + self.shipping_fee

    @property
    def units(self) -> int:
        return sum(pl.quantity for pl in self.lines)

    @property
    def total(self) -> int:
        if self.total_override is not None:
            return self.total_override
        return self.lines_amount + self.tax_amount + self.fees

    @property
    def online(self) -> bool:
        return any(a.online for a in self.allocations)


@dataclass
class RefundResult:
    refund: Refund
    replayed: bool = False


def _normalise_items(items: ItemsArg) -> list[tuple[int, int]]:
    if not items:
        return []
    pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    return [(int(line_id), qty) for line_id, qty in pairs]


def _plan_lines(locked: LockedSale, items: list[tuple[int, int]]) -> list[PlannedLine]:
    by_id = {line.pk: line for line in locked.lines}
    if not items:  # No items named: everything that remains.
        return [
            PlannedLine(line, line.remaining_quantity,
                        part(line.net_amount, line.refunded_quantity, line.remaining_quantity,
                             line.quantity),
                        part(line.tax_amount, line.refunded_quantity, line.remaining_quantity,
                             line.quantity))
            for line in locked.lines
            if line.remaining_quantity > 0
        ]
    errors: dict[str, list[str]] = {}
    sentences: list[str] = []  # the same refusals in plain words, for people
    seen: set[int] = set()
    planned: list[PlannedLine] = []
    unknown = exceeded = False
    for i, (line_id, qty) in enumerate(items):
        line = by_id.get(line_id)
        if line is None:
            errors[f"items[{i}].item_id"] = [f"Sale {locked.sale.number} has no line {line_id}."]
            unknown = True
            continue
        if line_id in seen:
            errors[f"items[{i}].item_id"] = [f"Line {line_id} is named twice."]
            continue
        seen.add(line_id)
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            errors[f"items[{i}].quantity"] = ["Quantity must be a whole number above zero."]
            continue
        if qty > line.remaining_quantity:
            left = line.remaining_quantity
            errors[f"items[{i}].quantity"] = [
                f"only {left} left to refund" if left else "nothing left to refund"
            ]
            name = line.description or line.sku or f"line {line.pk}"
            sentences.append(
                f"{name}: {qty} asked, only {left} left to refund" if left
                else f"{name}: {qty} asked, nothing left to refund"
            )
            exceeded = True
            continue
        planned.append(PlannedLine(
            line, qty,
            part(line.net_amount, line.refunded_quantity, qty, line.quantity),
            part(line.tax_amount, line.refunded_quantity, qty, line.quantity),
        ))
    if errors:
        first = next(iter(errors.values()))
        if exceeded:
            raise RefundQuantityExceededError(
                f"That is more than is left to refund. {'; '.join(sentences)}.", extra=errors
            )
        if unknown:
            raise UnknownLineError(first[0], extra=errors)
        raise ValidationFailedError(first[0], extra=errors)
    return planned


def _allocate(
    locked: LockedSale, total: int, splits: Mapping[int, int] | None, options: RefundOptions
) -> list[PlannedAllocation]:
    payments = locked.payments
    left = {p.pk: p.remaining_amount for p in payments}
    if splits:
        errors: dict[str, list[str]] = {}
        by_id = {p.pk: p for p in payments}
        for pid, amount in splits.items():
            key = f"splits[{pid}]"
            if pid not in by_id:
                raise UnknownPaymentError(
                    f"Sale {locked.sale.number} has no payment {pid}.",
                    extra={key: ["Unknown payment."]},
                )
            if not isinstance(amount, int) or amount < 0:
                errors[key] = ["Amount must be a whole number of minor units, zero or more."]
            elif amount > left[pid]:
                raise SplitExceedsPaymentError(
                    f"Payment {pid} has only {left[pid]} left to refund; {amount} asked.",
                    extra={key: [f"At most {left[pid]}."]},
                )
        if errors:
            raise ValidationFailedError(next(iter(errors.values()))[0], extra=errors)
        asked = sum(splits.values())
        if asked != total:
            raise SplitMismatchError(
                f"The splits add up to {asked} but the refund is {total}.",
                extra={"splits": [f"Must add up to {total}."]},
            )
        amounts = [splits.get(p.pk, 0) for p in payments]
    else:
        if total > sum(left.values()):
            raise RefundExceedsPaidError(
                f"The refund ({total}) is more than is left of what was paid "
                f"({sum(left.values())}) on sale {locked.sale.number}."
            )
        # In proportion to each payment's original amount, capped at what is left on it.
        amounts = largest_remainder(
            total, [p.amount for p in payments], [left[p.pk] for p in payments]
        )
    balance = options.type == RefundType.BALANCE_REFUND
    return [
        PlannedAllocation(
            payment=p,
            amount=amount,
            online=(not balance and options.online and amount > 0
                    and p.gateway not in OFFLINE_GATEWAYS),
        )
        for p, amount in zip(payments, amounts, strict=True)
        if amount > 0
    ]


def _check_refundable(sale: Sale, expected_refunded_amount: int | None) -> None:
    if sale.status == SaleStatus.CANCELLED:
        raise SaleCancelledError(f"Sale {sale.number} is cancelled; there is nothing to refund.")
    if sale.kind == SaleKind.QUOTE:
        raise SaleNotRefundableError(f"Sale {sale.number} is a quote; nothing was paid.")
    if sale.amount_paid <= 0:
        raise SaleNotRefundableError(
            f"Nothing was paid on sale {sale.number}; cancel it instead."
        )
    if expected_refunded_amount is not None and expected_refunded_amount != sale.amount_refunded:
        raise StaleRefundStateError(
            f"Sale {sale.number} has {format_money(sale.amount_refunded, sale.currency)} "
            f"refunded, not {format_money(expected_refunded_amount, sale.currency)} as "
            "expected: it changed since you looked. Reload it and check before refunding "
            "again.",
            extra={"expected_refunded_amount": [f"Now {sale.amount_refunded}."]},
        )


def _plan(
    locked: LockedSale,
    *,
    items: ItemsArg,
    options: RefundOptions,
    splits: Mapping[int, int] | None,
    expected_refunded_amount: int | None,
) -> RefundPlan:
    sale = locked.sale
    if options.type not in (RefundType.REFUND, RefundType.BALANCE_REFUND):
        raise ValidationFailedError(
            "Type must be refund or balance_refund (cancel a sale to cancel it).",
            extra={"type": ["Must be refund or balance_refund."]},
        )
    if options.reason not in RefundReason.values:
        raise ValidationFailedError(
            f"Reason must be one of {', '.join(RefundReason.values)}.",
            extra={"reason": ["Unknown reason."]},
        )
    _check_refundable(sale, expected_refunded_amount)
    if options.type == RefundType.BALANCE_REFUND and sale.customer_id is None:
        raise NoCustomerForBalanceError(
            f"Sale {sale.number} has no customer whose store balance could be credited."
        )

    planned = _plan_lines(locked, _normalise_items(items))
    refunded_after = sale.refunded_units + sum(pl.quantity for pl in planned)
    empties = refunded_after >= sale.units

    def fee(flag: bool | None, amount: int, refunded: int) -> tuple[bool, int]:
        wanted = empties if flag is None else flag
        return wanted, (amount if wanted and refunded == 0 else 0)

    want_processing, processing = fee(
        options.refund_processing_fee, sale.processing_fee, sale.refunded_processing_fee
    )
    want_reseller, reseller = fee(
        options.refund_reseller_fee, sale.reseller_fee, sale.refunded_reseller_fee
    )
    want_shipping, shipping = fee(
        options.refund_shipping, sale.shipping_fee, sale.refunded_shipping_fee
    )
    resolved = replace(
        options,
        refund_processing_fee=want_processing,
        refund_reseller_fee=want_reseller,
        refund_shipping=want_shipping,
        online=options.online and options.type == RefundType.REFUND,
    )
    plan = RefundPlan(
        sale=sale, options=resolved, lines=planned, allocations=[],
        processing_fee=processing, reseller_fee=reseller, shipping_fee=shipping,
        empties_sale=empties,
    )
    if plan.units == 0 and plan.total == 0:
        raise NothingToRefundError(f"Nothing is left to refund on sale {sale.number}.")
    plan.allocations = _allocate(locked, plan.total, splits, resolved)
    if resolved.online and not plan.online:
        plan.warnings.append("No payment can be refunded online: the refund is made offline.")
    return plan


def refund_preview(
    *,
    sale_id: int,
    items: ItemsArg = None,
    options: RefundOptions = RefundOptions(),  # noqa: B008 - frozen dataclass
    splits: Mapping[int, int] | None = None,
    expected_refunded_amount: int | None = None,
) -> RefundPlan:
    """What refund_create would do, written nowhere."""
    return _plan(
        sale_snapshot(sale_id), items=items, options=options, splits=splits,
        expected_refunded_amount=expected_refunded_amount,
    )


def request_fingerprint(**parts: Any) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    blob = json.dumps(parts, sort_keys=True, default=default, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def refund_create(
    *,
    sale_id: int,
    items: ItemsArg = None,
    options: RefundOptions = RefundOptions(),  # noqa: B008 - frozen dataclass
    splits: Mapping[int, int] | None = None,
    expected_refunded_amount: int | None = None,
    idempotency_key: str | None = None,
    idempotency_owner: str = "",
    request_hash: str = "",
    actor: Any = None,
    source: str = Source.ADMIN,
    external_id: str | None = None,
    import_source: str = "",
    api_key: Any = None,
) -> RefundResult:
    """Refund a sale, in full (no items) or by line and quantity. One transaction.

    With an idempotency key, a repeat of the same request returns the first refund and
    changes nothing; the same key with another request is refused. `api_key`: the
    backoffice.ApiKey the request came through (stored on the refund), or None.
    """
    norm_items = _normalise_items(items)
    fingerprint = request_hash or request_fingerprint(
        sale_id=sale_id, items=norm_items, options=asdict(options),
        splits=dict(splits or {}),
    )
    try:
        with transaction.atomic():
            locked = sale_lock(sale_id)
            if idempotency_key:
                existing = Refund.objects.filter(
                    idempotency_owner=idempotency_owner, idempotency_key=idempotency_key
                ).first()
                if existing is not None:
                    if existing.request_hash != fingerprint:
                        raise IdempotencyKeyReusedError(
                            "This idempotency key was already used for a different request."
                        )
                    return RefundResult(existing, replayed=True)
            plan = _plan(
                locked, items=norm_items, options=options, splits=splits,
                expected_refunded_amount=expected_refunded_amount,
            )
            refund = refund_write(
                plan, refund_type=plan.options.type, actor=actor, source=source,
                idempotency_key=idempotency_key, idempotency_owner=idempotency_owner,
                request_hash=fingerprint, external_id=external_id,
                import_source=import_source, api_key=api_key,
            )
    except IntegrityError as exc:
        raise _integrity_error(exc, idempotency_key) from exc
    if refund.status == RefundStatus.PENDING:
        # Eager settlement (embedded run) may already have answered.
        refund.refresh_from_db(fields=["status", "settled_at", "failure_reason"])
    log.info(
        "refund created", extra={
            "refund_id": refund.pk, "sale_id": refund.sale_id, "type": refund.type,
            "status": refund.status, "total": refund.total, "units": refund.units,
            "online": refund.online, "source": source,
        },
    )
    return RefundResult(refund)


def _integrity_error(exc: IntegrityError, idempotency_key: str | None) -> DomainError:
    text = str(exc)
    if idempotency_key and "idempotency_key" in text:
        return IdempotencyKeyReusedError(
            "This idempotency key was already used for a different request."
        )
    return ConstraintViolationError(
        "The refund was refused because it would give back more than was bought or paid.",
        extra={"constraint": [text.splitlines()[0][:200]]},
    )


def _sale_changes(plan: RefundPlan) -> tuple[dict[str, int], dict[str, Any]]:
    """Move the in-memory sale's counters and status to include this refund; return the
    same as (counter deltas, new values) for the UPDATE."""
    sale = plan.sale
    deltas = {
        "amount_refunded": plan.total, "refunded_units": plan.units,
        "refunded_processing_fee": plan.processing_fee,
        "refunded_reseller_fee": plan.reseller_fee,
        "refunded_shipping_fee": plan.shipping_fee,
    }
    for name, delta in deltas.items():
        setattr(sale, name, getattr(sale, name) + delta)
    sale.status = sale.compute_status()
    values = {
        "status": sale.status, "cancelled_at": sale.cancelled_at,
        "cancel_reason": sale.cancel_reason, "cancel_note": sale.cancel_note,
        "cancelled_by_id": sale.cancelled_by_id, "cancel_source": sale.cancel_source,
        "cancel_restock": sale.cancel_restock, "cancel_alert": sale.cancel_alert,
        "updated_at": timezone.now(),
    }
    return deltas, values


def _save_sale(plan: RefundPlan) -> None:
    """Move the sale's counters and status to include this refund."""
    deltas, values = _sale_changes(plan)
    Sale.objects.filter(pk=plan.sale.pk).update(
        **{name: F(name) + delta for name, delta in deltas.items()}, **values
    )


def _case(pairs: Mapping[int, int]) -> Case:
    return Case(*[When(pk=pk, then=Value(v)) for pk, v in pairs.items()], default=Value(0))


def move_line_counters(lines: Sequence[PlannedLine], sign: int) -> None:
    """One UPDATE for all the lines, whatever their number."""
    if not lines:
        return
    ids = [pl.line.pk for pl in lines]
    SaleLine.objects.filter(pk__in=ids).update(
        refunded_quantity=F("refunded_quantity") + _case({pl.line.pk: sign * pl.quantity
                                                          for pl in lines}),
        refunded_amount=F("refunded_amount") + _case({pl.line.pk: sign * pl.amount
                                                      for pl in lines}),
        refunded_tax=F("refunded_tax") + _case({pl.line.pk: sign * pl.tax_amount
                                                for pl in lines}),
    )
    for pl in lines:
        pl.line.refunded_quantity += sign * pl.quantity
        pl.line.refunded_amount += sign * pl.amount
        pl.line.refunded_tax += sign * pl.tax_amount


def move_payment_counters(amounts: Mapping[int, int], sign: int) -> None:
    amounts = {pk: a for pk, a in amounts.items() if a}
    if not amounts:
        return
    Payment.objects.filter(pk__in=list(amounts)).update(
        refunded_amount=F("refunded_amount") + _case({pk: sign * a for pk, a in amounts.items()})
    )


def restock_units(lines: Sequence[PlannedLine], sign: int) -> None:
    per_product: dict[int, int] = {}
    for pl in lines:
        if pl.line.product_id:
            per_product[pl.line.product_id] = per_product.get(pl.line.product_id, 0) + pl.quantity
    stock_move(per_product, sign)


def refund_row(
    plan: RefundPlan,
    *,
    refund_type: str,
    actor: Any,
    source: str,
    idempotency_key: str | None = None,
    idempotency_owner: str = "",
    request_hash: str = "",
    external_id: str | None = None,
    import_source: str = "",
    now: datetime | None = None,
    api_key: Any = None,
) -> Refund:
    """The Refund row for a plan, unsaved (refund_write saves it; bulk imports batch it).
    `api_key`: the backoffice.ApiKey it came through, or None (admin, command)."""
    opts = plan.options
    sale = plan.sale
    pending = plan.online
    now = now or timezone.now()
    return Refund(
        sale=sale,
        type=refund_type,
        status=RefundStatus.PENDING if pending else RefundStatus.SUCCEEDED,
        currency=sale.currency,
        restock=opts.restock,
        refund_processing_fee=bool(opts.refund_processing_fee),
        refund_reseller_fee=bool(opts.refund_reseller_fee),
        refund_shipping=bool(opts.refund_shipping),
        alert_customer=opts.alert_customer,
        online=plan.online,
        lines_amount=plan.lines_amount,
        tax_amount=plan.tax_amount,
        processing_fee=plan.processing_fee,
        reseller_fee=plan.reseller_fee,
        shipping_fee=plan.shipping_fee,
        total=plan.total,
        units=plan.units,
        reason=opts.reason,
        note=opts.note,
        batch_id=opts.batch_id,
        returned_at=opts.returned_at,
        idempotency_key=idempotency_key or None,
        idempotency_owner=idempotency_owner if idempotency_key else "",
        request_hash=request_hash,
        external_id=external_id,
        import_source=import_source,
        source=source,
        created_by=actor if getattr(actor, "pk", None) else None,
        api_key=api_key if getattr(api_key, "pk", None) else None,
        settled_at=None if pending else now,
    )


def _remember(instance: Any, relation: str, objs: list) -> None:
    """Fill a reverse relation's prefetch cache, as prefetch_related() would."""
    qs = getattr(instance, relation).all()
    qs._result_cache = objs
    qs._prefetch_done = True
    if not hasattr(instance, "_prefetched_objects_cache"):
        instance._prefetched_objects_cache = {}
    instance._prefetched_objects_cache[relation] = qs


# PostgreSQL writes a refund in one statement (write_pg.py); the ORM path is the
# portable one (SQLite, the embedded default). Tests write the same refunds both ways.
WRITE_IN_ONE_STATEMENT = True


def refund_write(
    plan: RefundPlan,
    *,
    refund_type: str,
    actor: Any,
    source: str,
    idempotency_key: str | None = None,
    idempotency_owner: str = "",
    request_hash: str = "",
    external_id: str | None = None,
    import_source: str = "",
    alert_event: str | None = None,
    api_key: Any = None,
) -> Refund:
    """Write a planned refund, move every counter and the sale's. The caller holds the
    sale's lock."""
    opts = plan.options
    sale = plan.sale
    pending = plan.online
    now = timezone.now()
    refund = refund_row(
        plan, refund_type=refund_type, actor=actor, source=source,
        idempotency_key=idempotency_key, idempotency_owner=idempotency_owner,
        request_hash=request_hash, external_id=external_id, import_source=import_source,
        now=now, api_key=api_key,
    )
    refund_lines = [
        RefundLine(refund=refund, sale_line=pl.line, quantity=pl.quantity,
                   amount=pl.amount, tax_amount=pl.tax_amount)
        for pl in plan.lines
    ]
    allocations = [
        RefundPayment(
            refund=refund, payment=a.payment, amount=a.amount, online=a.online,
            # Offline parts of a refund that also goes online settle with it.
            status=AllocationStatus.PENDING if pending else AllocationStatus.SUCCEEDED,
            settled_at=None if pending else now,
        )
        for a in plan.allocations
    ]
    alerts: list[CustomerAlert] = []
    if opts.alert_customer:
        event = alert_event or (
            AlertEvent.SALE_REFUNDED if plan.empties_sale else AlertEvent.REFUND_CREATED
        )
        alerts = alerts_build(sale=sale, refund=refund, event=event)
    balance = refund_type == RefundType.BALANCE_REFUND

    if WRITE_IN_ONE_STATEMENT and connection.vendor == "postgresql":
        from .write_pg import write_refund_postgres

        stock: dict[int, int] = {}
        if opts.restock:
            for pl in plan.lines:
                if pl.line.product_id:
                    stock[pl.line.product_id] = stock.get(pl.line.product_id, 0) + pl.quantity
        payments: dict[int, int] = {}
        for a in plan.allocations:
            payments[a.payment.pk] = payments.get(a.payment.pk, 0) + a.amount
        sale_deltas, sale_values = _sale_changes(plan)
        ids = write_refund_postgres(
            refund=refund, lines=refund_lines, allocations=allocations, alerts=alerts,
            line_deltas={pl.line.pk: (pl.quantity, pl.amount, pl.tax_amount)
                         for pl in plan.lines},
            stock_deltas=stock,
            payment_deltas={pk: amount for pk, amount in payments.items() if amount},
            balance_credit=(sale.customer_id or 0, plan.total) if balance else None,
            sale=sale, sale_deltas=sale_deltas, sale_values=sale_values,
        )
        refund.pk = ids.refund
        refund._state.adding = False
        for rows, new_ids in ((refund_lines, ids.lines), (allocations, ids.allocations),
                              (alerts, ids.alerts)):
            for obj, pk in zip(rows, new_ids, strict=True):
                obj.pk = pk
                setattr(obj, "refund_id", refund.pk)  # noqa: B010 - rows of three models
                obj._state.adding = False
        for pl in plan.lines:
            pl.line.refunded_quantity += pl.quantity
            pl.line.refunded_amount += pl.amount
            pl.line.refunded_tax += pl.tax_amount
    else:
        refund.save(force_insert=True)
        if refund_lines:
            RefundLine.objects.bulk_create(refund_lines)
        move_line_counters(plan.lines, +1)
        if opts.restock:
            restock_units(plan.lines, +1)
        if allocations:
            RefundPayment.objects.bulk_create(allocations)
            move_payment_counters({a.payment.pk: a.amount for a in plan.allocations}, +1)
        if balance:
            Customer.objects.filter(pk=sale.customer_id).update(  # type: ignore[misc]
                store_balance=F("store_balance") + plan.total  # (_plan requires a customer)
            )
        if alerts:
            CustomerAlert.objects.bulk_create(alerts)
        _save_sale(plan)
    # What was just written, as refund.lines.all() / .allocations.all() would read it: the
    # API renders the new refund without reading it back (3 queries fewer per refund).
    _remember(refund, "lines", refund_lines)
    _remember(refund, "allocations", allocations)
    if alerts and not pending:
        alerts_queue(alerts)
    if pending:
        from ..tasks import settle_refund

        # robust: a broker that is down must not turn a committed refund into an error;
        # it stays pending and beat re-queues its settlement (resettle_pending_refunds).
        transaction.on_commit(lambda: settle_refund.delay(refund.pk), robust=True)
    return refund
