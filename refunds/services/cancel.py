"""Cancel a sale: refund what was paid, restock, alert. One transaction.

The sale's cancellation is its own row (sales.SaleCancellation: who cancelled it, when,
why, through which door and with which options — a cancel with nothing paid writes no
refund that could say so), written by the ledger with the sale's status, and deleted by
it if the gateway refuses the cancellation's refund.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from backoffice.errors import SaleNotCancellableError, ValidationFailedError
from backoffice.money import part
from sales.models import CancelReason, SaleCancellation, SaleKind, SaleStatus
from sales.selectors import LockedSale, sale_lock, sale_snapshot

from ..models import (
    AlertEvent,
    CustomerAlert,
    Refund,
    RefundReason,
    RefundStatus,
    RefundType,
    Source,
)
from .alerts import alerts_build, alerts_queue
from .ledger import Effect, effect_of_plan, ledger_write
from .plan import OFFLINE_GATEWAYS, PlannedAllocation, PlannedLine, RefundOptions, RefundPlan
from .refund import refund_write, refusal_for

log = logging.getLogger(__name__)


@dataclass
class CancelResult:
    sale: Any
    refund: Refund | None
    already: bool = False


def _cancel_plan(locked: LockedSale, *, restock: bool, alert_customer: bool,
                 reason: str, note: str) -> RefundPlan | None:
    """What a cancel gives back: every line, every fee, all that was paid."""
    sale = locked.sale
    if sale.status == SaleStatus.CANCELLED:
        return None
    if sale.amount_refunded > 0 or sale.refunded_units > 0:
        raise SaleNotCancellableError(
            f"Sale {sale.number} is already refunded in full and cannot be cancelled."
            if sale.status == SaleStatus.REFUNDED else
            f"Sale {sale.number} is already partly refunded and cannot be cancelled; "
            "refund the rest instead."
        )
    lines = [
        PlannedLine(line, line.quantity, part(line.net_amount, 0, line.quantity, line.quantity),
                    part(line.tax_amount, 0, line.quantity, line.quantity))
        for line in locked.lines
    ]
    options = RefundOptions(
        type=RefundType.CANCELLATION, restock=restock, refund_processing_fee=True,
        refund_reseller_fee=True, refund_shipping=True, alert_customer=alert_customer,
        online=True, reason=reason, note=note,
    )
    return RefundPlan(
        sale=sale, options=options, lines=lines,
        # Each payment goes back in full, through its own channel.
        allocations=[
            PlannedAllocation(payment=p, amount=p.remaining_amount,
                              online=p.gateway not in OFFLINE_GATEWAYS)
            for p in locked.payments if p.remaining_amount > 0
        ],
        processing_fee=sale.processing_fee, reseller_fee=sale.reseller_fee,
        shipping_fee=sale.shipping_fee, empties_sale=True,
        total_override=sale.amount_paid,
    )


def _check_reason(reason: str) -> None:
    if reason not in CancelReason.values:
        raise ValidationFailedError(
            f"Reason must be one of {', '.join(CancelReason.values)}.",
            extra={"reason": ["Unknown reason."]},
        )


def sale_cancel_preview(*, sale_id: int, restock: bool = True, reason: str = "other",
                        note: str = "") -> RefundPlan | None:
    """What sale_cancel would give back (None: already cancelled)."""
    _check_reason(reason)
    return _cancel_plan(sale_snapshot(sale_id), restock=restock, alert_customer=False,
                        reason=reason, note=note)


def sale_cancel(
    *,
    sale_id: int,
    reason: str = CancelReason.OTHER,
    note: str = "",
    restock: bool = True,
    alert_customer: bool = False,
    actor: Any = None,
    source: str = Source.ADMIN,
    api_key: Any = None,
) -> CancelResult:
    """Cancel a sale. On a sale already cancelled: nothing more happens (no second alert).

    `source` is the door (admin, api, command, import), recorded on the sale with the
    options; `api_key`, the backoffice.ApiKey an API call came through (stored on the
    cancellation's refund), or None.
    """
    _check_reason(reason)
    if source not in Source.values:
        raise ValidationFailedError(
            f"Source must be one of {', '.join(Source.values)}.",
            extra={"source": ["Unknown source."]},
        )
    try:
        with transaction.atomic():
            locked = sale_lock(sale_id)
            sale = locked.sale
            plan = _cancel_plan(locked, restock=restock, alert_customer=alert_customer,
                                reason=reason, note=note)
            if plan is None:
                return CancelResult(sale=sale, refund=None, already=True)
            # Written with the status by the ledger (its effect cancels the sale).
            sale.cancellation = SaleCancellation(
                sale=sale, cancelled_at=timezone.now(), reason=reason, note=note,
                cancelled_by=actor if getattr(actor, "pk", None) else None,
                source=source, restock=restock, alert=alert_customer,
            )
            refund = None
            if sale.amount_paid > 0:
                refund = refund_write(plan, refund_type=RefundType.CANCELLATION, actor=actor,
                                      source=source, alert_event=AlertEvent.SALE_CANCELLED,
                                      api_key=api_key).refund
            else:
                # A quote or an unpaid invoice is simply cancelled: no refund, no money.
                # What it moves: the units back in stock (a quote held none), no money.
                held = sale.kind != SaleKind.QUOTE
                effect = Effect(stock=effect_of_plan(plan).stock if held else {},
                                cancelled={sale.pk: 1})
                effect.apply([locked])
                ledger_write(effect, {sale.pk: sale})
                if alert_customer:
                    alerts = alerts_build(sale=sale, refund=None, event=AlertEvent.SALE_CANCELLED)
                    CustomerAlert.objects.bulk_create(alerts)
                    alerts_queue(alerts)
    except IntegrityError as exc:
        raise refusal_for(exc) from exc
    if refund is not None and refund.status == RefundStatus.PENDING:
        # Eager settlement (embedded run) may already have answered.
        refund.refresh_from_db(fields=["status", "settled_at", "failure_reason"])
    log.info(
        "sale cancelled", extra={
            "sale_id": sale.pk, "refund_id": refund.pk if refund else None,
            "refunded": refund.total if refund else 0, "reason": reason, "restock": restock,
            "alert_customer": alert_customer, "source": source,
        },
    )
    return CancelResult(sale=sale, refund=refund)


__all__ = ["CancelResult", "RefundReason", "sale_cancel", "sale_cancel_preview"]
