"""Refund a sale: in full or line by line, unit by unit (the door-facing functions).

The plan is plan.py's (the same for the preview and the write); what it moves is its
effect, written by ledger.py; this module writes the refund's own rows with it, and
queues its settlement and alerts (queue.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from backoffice.errors import ConstraintViolationError, DomainError
from backoffice.idempotency import KeyOutcome, key_reused, run_once
from backoffice.models import IdempotencyKey
from sales.selectors import sale_lock

from ..models import (
    AlertEvent,
    AllocationStatus,
    CustomerAlert,
    Refund,
    RefundLine,
    RefundPayment,
    RefundStatus,
    RefundType,
    Source,
)
from .alerts import alerts_build, alerts_queue
from .ledger import NewRows, effect_of_plan, ledger_write, rows_of_plan
from .plan import ItemsArg, RefundOptions, RefundPlan, normalise_items, plan_refund, refund_preview
from .queue import queue_settlement

log = logging.getLogger(__name__)


@dataclass
class RefundResult:
    """A refund and what was written with it (`lines`, `allocations`: as saved, for the
    caller to render without reading them back; empty on a replay)."""

    refund: Refund
    replayed: bool = False
    lines: list[RefundLine] = field(default_factory=list)
    allocations: list[RefundPayment] = field(default_factory=list)


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
    actor: Any = None,
    source: str = Source.ADMIN,
    external_id: str | None = None,
    import_source: str = "",
    api_key: Any = None,
) -> RefundResult:
    """Refund a sale, in full (no items) or by line and quantity. One transaction.

    With an idempotency key (`idempotency_owner`: whose key it is), a repeat of the same
    request (sale, items, options, splits) returns the first refund and changes nothing;
    the same key with another request is refused (backoffice.idempotency.run_once, the one
    store; the API claims its keys there itself and calls this without one). `api_key`: the
    backoffice.ApiKey the request came through (stored on the refund), or None.
    """
    norm_items = normalise_items(items)
    fingerprint = request_fingerprint(
        sale_id=sale_id, items=norm_items, options=asdict(options),
        splits=dict(splits or {}),
    ) if idempotency_key else ""

    def write() -> RefundResult:
        with transaction.atomic():
            locked = sale_lock(sale_id)
            plan = plan_refund(
                locked, items=norm_items, options=options, splits=splits,
                expected_refunded_amount=expected_refunded_amount,
            )
            return refund_write(
                plan, refund_type=plan.options.type, actor=actor, source=source,
                external_id=external_id, import_source=import_source, api_key=api_key,
            )

    try:
        # The one store (backoffice.idempotency): the key's row is claimed before the
        # sale is locked, and points at the refund it made.
        written = run_once(
            key=idempotency_key, owner=idempotency_owner, fingerprint=fingerprint,
            work=write, replay=replayed_refund,
            outcome=lambda result: KeyOutcome(refund=result.refund),
        )
    except IntegrityError as exc:
        raise refusal_for(exc) from exc
    if written.replayed:
        return written
    refund = written.refund
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
    return written


def replayed_refund(row: IdempotencyKey) -> RefundResult:
    """A repeat of a refund request: the refund its key made, written nothing."""
    if row.refund is None:
        # The key answered an API request that made no refund: never this request.
        raise key_reused()
    return RefundResult(row.refund, replayed=True)


def refusal_for(exc: IntegrityError) -> DomainError:
    """The DomainError for a write the database refused (a constraint)."""
    text = str(exc)
    return ConstraintViolationError(
        "The refund was refused because it would give back more than was bought or paid.",
        extra={"constraint": [text.splitlines()[0][:200]]},
    )


def refund_row(
    plan: RefundPlan,
    *,
    refund_type: str,
    actor: Any,
    source: str,
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
        external_id=external_id,
        import_source=import_source,
        source=source,
        created_by=actor if getattr(actor, "pk", None) else None,
        api_key=api_key if getattr(api_key, "pk", None) else None,
        settled_at=None if pending else now,
    )


def refund_write(
    plan: RefundPlan,
    *,
    refund_type: str,
    actor: Any,
    source: str,
    external_id: str | None = None,
    import_source: str = "",
    alert_event: str | None = None,
    api_key: Any = None,
) -> RefundResult:
    """Write a planned refund with its effect (every counter and the sale's), and queue
    its settlement or alerts. The caller holds the sale's lock (`plan` was made from
    those locked rows, which move in memory too)."""
    pending = plan.online
    now = timezone.now()
    refund = refund_row(
        plan, refund_type=refund_type, actor=actor, source=source,
        external_id=external_id, import_source=import_source, now=now, api_key=api_key,
    )
    lines = [
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
    if plan.options.alert_customer:
        event = alert_event or (
            AlertEvent.SALE_REFUNDED if plan.empties_sale else AlertEvent.REFUND_CREATED
        )
        alerts = alerts_build(sale=plan.sale, refund=refund, event=event)
    effect = effect_of_plan(plan, cancels=refund_type == RefundType.CANCELLATION)
    effect.apply([rows_of_plan(plan)])
    ledger_write(effect, {plan.sale.pk: plan.sale},
                 NewRows(refund, lines=lines, allocations=allocations, alerts=alerts))
    if alerts and not pending:
        alerts_queue(alerts)
    if pending:
        queue_settlement(refund.pk)
    return RefundResult(refund, lines=lines, allocations=allocations)


__all__ = ["RefundOptions", "RefundResult", "refund_create", "refund_preview", "refund_row",
           "refund_write", "refusal_for", "replayed_refund", "request_fingerprint"]
