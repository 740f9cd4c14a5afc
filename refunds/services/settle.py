"""Settle a refund's online allocations with the payment gateway.

The gateway is called outside any database transaction. Before each call the
allocation's attempt is recorded (committed), and the call carries the allocation's own
idempotency key, so a retry after a timeout can never refund twice. A refused refund is
rolled back in one compensating transaction: quantities, amounts, fees, restocked units
and store balance go back to what they were, and its alerts are withdrawn.

A refund split over several online payments may be refused on one after another already
gave money back (and only then: `refund_needs_attention_q`). Money that moved can't be
taken back, and the customer is owed the rest, so nothing is rolled back: the refund
stays pending and *needs attention* (its counters still hold what it gives back, so
nobody can refund those units or that money twice), and the customer is told nothing yet.
Staff give the refused part back another way and record it with `refund_settle_offline`;
then the refund succeeds and the customer is alerted.

Retries are scheduled: before the settle task retries it records when on the refund's
still-pending online allocations (`refund_retry_at`, `next_attempt_at`); an answer from
the gateway clears it. Beat (`refunds_resettle`) queues every pending refund that is not
final and has no retry coming (no online allocation has one due, or only one overdue by
more than RETRY_GRACE): those still waiting for the gateway, and those whose answers
were all saved but whose finalisation was lost with its worker. It never starts a second
settlement beside the task's own retries, and it claims what it queues. The states and
their transitions are in docs/settlement.md.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from backoffice.errors import RefundNotAwaitingActionError
from backoffice.money import format_money
from sales.models import Sale
from sales.selectors import LockedSale, sale_lock

from ..gateways import GatewayError, GatewayUnavailableError, gateway_for
from ..models import (
    AlertStatus,
    AllocationStatus,
    CustomerAlert,
    Refund,
    RefundPayment,
    RefundStatus,
)
from .alerts import RETRY_GRACE, alerts_queue
from .ledger import effect_of_refund, ledger_write
from .queue import queue_settlements

log = logging.getLogger(__name__)


def _claim(allocation_id: int) -> RefundPayment | None:
    """Record an attempt; None when the allocation is no longer pending."""
    with transaction.atomic():
        allocation = (
            RefundPayment.objects.select_for_update().select_related("payment")
            .filter(pk=allocation_id).first()
        )
        if allocation is None or allocation.status != AllocationStatus.PENDING:
            return None
        allocation.attempts += 1
        allocation.save(update_fields=["attempts"])
        return allocation


def refund_settle(*, refund_id: int) -> Refund:
    """Ask the gateway for each pending online allocation, then settle the refund.

    Raises GatewayUnavailableError (transient) for the caller to retry later; the
    allocations already answered keep their answer.
    """
    answers = set(RefundPayment.objects.filter(refund_id=refund_id, online=True)
                  .exclude(status=AllocationStatus.PENDING).values_list("status", flat=True))
    if AllocationStatus.FAILED in answers and AllocationStatus.SUCCEEDED not in answers:
        # A refusal came first (a run that died before finalising): as that run would
        # have, ask no further payment; the refund fails whole.
        return refund_finalise(refund_id=refund_id)
    allocation_ids = list(
        RefundPayment.objects.filter(
            refund_id=refund_id, online=True, status=AllocationStatus.PENDING
        ).order_by("pk").values_list("pk", flat=True)
    )
    for allocation_id in allocation_ids:
        allocation = _claim(allocation_id)
        if allocation is None:
            continue
        try:
            result = gateway_for(allocation.payment.gateway).refund(
                allocation.payment, allocation.amount, allocation.idempotency_key
            )
        except GatewayUnavailableError as exc:
            # Outcome unknown: stay pending, ask again later with the same key.
            RefundPayment.objects.filter(pk=allocation_id).update(last_error=str(exc)[:2000])
            log.warning("gateway unavailable for allocation %s of refund %s: %s",
                        allocation_id, refund_id, exc)
            raise
        except GatewayError as exc:
            RefundPayment.objects.filter(pk=allocation_id, status=AllocationStatus.PENDING).update(
                status=AllocationStatus.FAILED, last_error=str(exc)[:2000],
                settled_at=timezone.now(), next_attempt_at=None,
            )
            log.warning("gateway refused allocation %s of refund %s: %s",
                        allocation_id, refund_id, exc,
                        extra={"refund_id": refund_id, "allocation_id": allocation_id})
            if not RefundPayment.objects.filter(
                refund_id=refund_id, online=True, status=AllocationStatus.SUCCEEDED
            ).exists():
                break  # Nothing moved yet: no further money moves, the refund fails whole.
            # Some money already went back: the customer is owed the rest; send it all.
            continue
        RefundPayment.objects.filter(pk=allocation_id, status=AllocationStatus.PENDING).update(
            status=AllocationStatus.SUCCEEDED, gateway_reference=result.reference,
            settled_at=timezone.now(), last_error="", next_attempt_at=None,
        )
    return refund_finalise(refund_id=refund_id)


def refund_retry_at(*, refund_id: int, when: datetime | None) -> int:
    """Record when the settle task asks again for the refund's still-pending online
    allocations (None: no retry is coming; beat takes over). Returns how many."""
    return RefundPayment.objects.filter(
        refund_id=refund_id, online=True, status=AllocationStatus.PENDING
    ).update(next_attempt_at=when)


def refund_needs_attention_q() -> Q:
    """A pending refund of which some money really went back (an online allocation
    succeeded), another part was refused, and nothing is still waiting for the gateway."""
    online = RefundPayment.objects.filter(refund=OuterRef("pk"), online=True)
    return Q(
        Exists(online.filter(status=AllocationStatus.SUCCEEDED)),
        Exists(online.filter(status=AllocationStatus.FAILED)),
        ~Exists(online.filter(status=AllocationStatus.PENDING)),
        status=RefundStatus.PENDING,
    )


def refunds_unsettled(*, older_than: timedelta = timedelta(0),
                      grace: timedelta = RETRY_GRACE):
    """Pending online refunds that are not final and have no retry of their own coming:
    still waiting for the gateway, or answered but never finalised (their worker died
    between the answer and the finalisation). Not those that need attention (final
    until staff act) and not those with an online allocation whose retry is due later
    than `grace` ago."""
    now = timezone.now()
    online = RefundPayment.objects.filter(refund=OuterRef("pk"), online=True)
    scheduled = online.filter(next_attempt_at__gt=now - grace)
    return Refund.objects.filter(
        Exists(online), ~Exists(scheduled), ~refund_needs_attention_q(),
        status=RefundStatus.PENDING, created_at__lte=now - older_than,
    ).order_by("created_at", "pk")


def refunds_resettle(*, older_than: timedelta = timedelta(0), limit: int = 500,
                     grace: timedelta = RETRY_GRACE) -> int:
    """Queue the settle task again for online refunds left unsettled (broker was down at
    refund time, retries ran out during a gateway outage, a worker died with the retry or
    between the gateway's answer and the finalisation). Only past-due ones
    (`refunds_unsettled`), claimed first: a refund row locked by a settlement in progress
    is skipped, the others' online allocations get `next_attempt_at` = now + `grace`, so
    another run within that time does not queue them twice. Safe to repeat: the gateway
    is asked with the same idempotency key. Returns how many were queued."""
    with transaction.atomic():
        ids = list(
            refunds_unsettled(older_than=older_than, grace=grace)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:limit]
        )
        hold = timezone.now() + grace
        RefundPayment.objects.filter(refund_id__in=ids, online=True).update(
            next_attempt_at=hold)
    queued = queue_settlements(ids)
    if missed := ids[queued:]:  # The broker is down: the next run tries them again.
        RefundPayment.objects.filter(refund_id__in=missed, next_attempt_at=hold).update(
            next_attempt_at=None)
    return queued


def refund_finalise(*, refund_id: int) -> Refund:
    """Settle the refund from its allocations' answers (idempotent)."""
    refund = Refund.objects.get(pk=refund_id)
    with transaction.atomic():
        locked = sale_lock(refund.sale_id)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status != RefundStatus.PENDING:
            return refund
        allocations = list(refund.allocations.order_by("pk"))
        failed = [a for a in allocations if a.status == AllocationStatus.FAILED]
        online_pending = [a for a in allocations
                          if a.online and a.status == AllocationStatus.PENDING]
        if not failed and online_pending:
            return refund  # Still waiting for the gateway.
        now = timezone.now()
        if not failed:
            RefundPayment.objects.filter(
                refund=refund, status=AllocationStatus.PENDING
            ).update(status=AllocationStatus.SUCCEEDED, settled_at=now, next_attempt_at=None)
            refund.allocations.exclude(next_attempt_at=None).update(next_attempt_at=None)
            refund.status = RefundStatus.SUCCEEDED
            refund.settled_at = now
            refund.save(update_fields=["status", "settled_at"])
            alerts_queue(list(refund.alerts.filter(status=AlertStatus.PENDING)))
            return refund
        succeeded = [a for a in allocations
                     if a.online and a.status == AllocationStatus.SUCCEEDED]
        if succeeded:
            if online_pending:
                return refund  # The other payments are still being asked.
            _needs_attention(refund, locked.sale, allocations)
            return refund
        _compensate(refund, locked, allocations)
        return refund


def _needs_attention(refund: Refund, sale: Sale, allocations: list[RefundPayment]) -> None:
    refused = [a for a in allocations if a.status == AllocationStatus.FAILED]
    owed = sum(a.amount for a in refused)
    reason = (
        f"Needs attention: {format_money(owed, sale.currency)} was refused by the gateway "
        f"({'; '.join(a.last_error for a in refused if a.last_error) or 'declined'}); the "
        "rest went back. Give the refused part back another way, then record it "
        "(\"Record the refused part as given back offline\")."
    )[:2000]
    if refund.failure_reason != reason:
        refund.failure_reason = reason
        refund.save(update_fields=["failure_reason"])
    log.warning("refund needs attention", extra={
        "refund_id": refund.pk, "sale_id": sale.pk, "owed": owed,
        "allocations": [a.pk for a in refused]})


def refunds_needing_attention():
    """Pending refunds of which one payment went back and another was refused."""
    return Refund.objects.filter(refund_needs_attention_q())


def refund_settle_offline(*, refund_id: int, actor=None, note: str = "") -> Refund:
    """Staff gave a refund's refused part back another way (cash, bank transfer): record
    it, so the refund succeeds and the customer is alerted. One transaction."""
    with transaction.atomic():
        locked = sale_lock(Refund.objects.values_list("sale_id", flat=True).get(pk=refund_id))
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        refused = list(refund.allocations.filter(status=AllocationStatus.FAILED))
        if not Refund.objects.filter(refund_needs_attention_q(), pk=refund.pk).exists():
            raise RefundNotAwaitingActionError(
                f"Refund #{refund.pk} of sale {locked.sale.number} has no refused part "
                "waiting to be given back.",
            )
        who = getattr(actor, "get_username", lambda: "")() or "staff"
        RefundPayment.objects.filter(pk__in=[a.pk for a in refused]).update(
            status=AllocationStatus.PENDING, online=False, next_attempt_at=None,
            gateway_reference=f"offline by {who}{': ' + note if note else ''}"[:128],
        )
        Refund.objects.filter(pk=refund.pk).update(failure_reason="")
        refund = refund_finalise(refund_id=refund_id)
    log.info("refund settled offline", extra={
        "refund_id": refund.pk, "sale_id": refund.sale_id, "status": refund.status})
    return refund


def _compensate(refund: Refund, locked: LockedSale, allocations: list[RefundPayment]) -> None:
    """Undo everything the refund moved (no money went back)."""
    now = timezone.now()
    sale: Sale = locked.sale
    released = allocations
    RefundPayment.objects.filter(pk__in=[a.pk for a in released]).update(
        status=AllocationStatus.FAILED, settled_at=now, next_attempt_at=None
    )
    # Everything it moved, from its ledger rows, reversed: counters, stock, store credit,
    # and a cancellation (the money did not go back: the sale is not cancelled after all).
    effect = effect_of_refund(refund, locked).reversed()
    effect.apply([locked])
    ledger_write(effect, {sale.pk: sale}, refund_id=refund.pk)

    failures = "; ".join(a.last_error for a in allocations if a.last_error)
    refund.status = RefundStatus.FAILED
    refund.settled_at = now
    refund.failure_reason = (failures or "The gateway refused the refund.")[:2000]
    refund.save(update_fields=["status", "settled_at", "failure_reason"])
    CustomerAlert.objects.filter(refund=refund, status=AlertStatus.PENDING).update(
        status=AlertStatus.CANCELLED, last_error="The refund failed at the payment gateway.",
        next_attempt_at=None,
    )
