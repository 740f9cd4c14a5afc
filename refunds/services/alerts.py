"""Customer alerts: an outbox written with the refund, sent after commit, never twice.

- `alerts_build` makes the rows; the refund or cancel saves them in its own transaction,
  so a rolled-back refund has no alert.
- `alerts_queue` queues the send task once that transaction commits. A broker that is
  down does not break the refund: the alert stays pending and `alerts_requeue` (Celery
  beat, `manage.py retry_alerts`) queues it again later.
- `alert_send` locks the row and sends only a pending alert, and only once its refund
  succeeded (an online refund waits for the gateway). A transient failure is recorded
  (`attempts`, `last_error`) and raised as `AlertDeliveryError` for the task to retry;
  a permanent one marks the alert `failed`. Staff see failures in the admin and
  resend them (`alerts_resend`).
- Retries are scheduled: before the task retries it records when (`alert_retry_at`,
  `next_attempt_at`); sending, failing for good or giving up clears it. Beat re-queues
  only past-due work: an alert with no retry due, or whose retry is overdue by more than
  RETRY_GRACE (its retry was lost with a dead worker). It claims what it queues (locked
  rows skipped, `next_attempt_at` moved RETRY_GRACE ahead), so a second beat run right
  after, or a second beat by mistake, does not queue it again.
"""

from __future__ import annotations

import logging
import re
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string
from django.utils import timezone

from backoffice.sms import SmsRejectedError, send_sms
from sales.models import Sale

from ..models import AlertChannel, AlertStatus, CustomerAlert, Refund, RefundStatus, RefundType

log = logging.getLogger(__name__)

# Failures that a retry cannot fix: the alert is marked failed at once.
PERMANENT_ERRORS = (
    TemplateDoesNotExist, TemplateSyntaxError, smtplib.SMTPRecipientsRefused, SmsRejectedError,
)


# How long past its due time a scheduled retry may be before beat takes it over; also
# how far ahead beat pushes what it queues.
RETRY_GRACE = timedelta(seconds=30)


class AlertDeliveryError(Exception):
    """Sending failed for a reason that may pass (mail server or SMS provider down)."""


def alerts_build(*, sale: Sale, refund: Refund | None, event: str) -> list[CustomerAlert]:
    """One unsaved alert per channel the sale's customer can receive."""
    customer = sale.customer
    if customer is None:
        return []
    alerts = []
    if customer.email:
        alerts.append(CustomerAlert(sale=sale, refund=refund, event=event,
                                    channel=AlertChannel.EMAIL, recipient=customer.email))
    if customer.phone:
        alerts.append(CustomerAlert(sale=sale, refund=refund, event=event,
                                    channel=AlertChannel.SMS, recipient=customer.phone))
    return alerts


def enqueue_each(task, ids: Iterable[Any], *, what: str) -> int:
    """`task.delay(pk)` for each id; stop at the first broker error. Returns how many
    were queued. What was not queued stays pending in the database: beat re-queues it."""
    queued = 0
    for pk in ids:
        try:
            task.delay(pk)
        except Exception:  # Broker down: never breaks the caller's (committed) work.
            log.warning("could not queue %s %s; it stays pending", what, pk, exc_info=True)
            break
        queued += 1
    return queued


def _enqueue(ids: Iterable[int]) -> int:
    from ..tasks import send_customer_alert

    return enqueue_each(send_customer_alert, ids, what="customer alert")


def _enqueue_together(ids: list[int]) -> int:
    from ..tasks import send_customer_alerts

    return enqueue_each(send_customer_alerts, [ids], what="customer alerts")


def alerts_queue(alerts: Sequence[CustomerAlert]) -> None:
    """Queue the sending of these alerts (a refund's or a cancel's: one per channel) once
    the current transaction commits, in one task message."""
    ids = [a.pk for a in alerts if a.pk]
    if ids:
        transaction.on_commit(lambda: _enqueue_together(ids))


@dataclass
class AlertMessage:
    subject: str
    text: str
    html: str
    sms: str


def _lines(alert: CustomerAlert) -> list[dict]:
    """What the message lists: the refund's lines, or a cancelled sale's own lines."""
    if alert.refund_id:
        refund = alert.refund
        assert refund is not None  # refund_id is set
        return [
            {"description": rl.sale_line.description, "sku": rl.sale_line.sku,
             "quantity": rl.quantity, "amount": rl.amount + rl.tax_amount}
            for rl in refund.lines.select_related("sale_line").order_by("pk")
        ]
    return [
        {"description": line.description, "sku": line.sku, "quantity": line.quantity,
         "amount": line.net_amount + line.tax_amount}
        for line in alert.sale.lines.order_by("pk")
    ]


def _destinations(refund: Refund | None) -> list[dict]:
    """Where the money goes: each payment method with its part, or the store balance."""
    if refund is None:
        return []
    if refund.type == RefundType.BALANCE_REFUND:
        return [{"label": "your store credit", "amount": refund.total}]
    return [
        {"label": f"your {a.payment.get_method_display().lower()}", "amount": a.amount}
        for a in refund.allocations.select_related("payment").order_by("pk")
        if a.amount
    ]


def alert_context(alert: CustomerAlert) -> dict:
    sale, refund = alert.sale, alert.refund
    lines = _lines(alert)
    fees = []
    if refund is not None:
        fees = [(label, amount) for label, amount in (
            ("Shipping", refund.shipping_fee), ("Processing fee", refund.processing_fee),
            ("Reseller fee", refund.reseller_fee),
        ) if amount]
    return {
        "alert": alert, "sale": sale, "refund": refund, "customer": sale.customer,
        "currency": sale.currency, "shop_name": settings.SHOP_NAME,
        "lines": lines, "units": sum(line["quantity"] for line in lines), "fees": fees,
        "total": refund.total if refund is not None else 0,
        "destinations": _destinations(refund),
    }


def alert_message(alert: CustomerAlert) -> AlertMessage:
    """Render the alert's templates: alerts/<event>{_subject.txt,.txt,.html,_sms.txt}."""
    context = alert_context(alert)
    name = f"alerts/{alert.event}"
    return AlertMessage(
        subject=" ".join(render_to_string(f"{name}_subject.txt", context).split()),
        text=re.sub(r"\n{3,}", "\n\n", render_to_string(f"{name}.txt", context).strip()) + "\n",
        html=render_to_string(f"{name}.html", context),
        sms=" ".join(render_to_string(f"{name}_sms.txt", context).split()),
    )


def _deliver(alert: CustomerAlert, message: AlertMessage) -> None:
    if alert.channel == AlertChannel.EMAIL:
        email = EmailMultiAlternatives(
            message.subject, message.text, None, [alert.recipient],
            headers={"X-Customer-Alert": str(alert.pk)},
        )
        email.attach_alternative(message.html, "text/html")
        email.send()
    else:
        send_sms(alert.recipient, message.sms)


def alert_send(*, alert_id: int) -> CustomerAlert | None:
    """Send one alert at most once: lock the row, skip it unless pending.

    Raises AlertDeliveryError after recording a transient failure.
    """
    with transaction.atomic():
        alert = (
            CustomerAlert.objects.select_for_update(of=("self",))
            .select_related("sale__customer", "refund").filter(pk=alert_id).first()
        )
        if alert is None or alert.status != AlertStatus.PENDING:
            return alert
        if alert.refund is not None and alert.refund.status == RefundStatus.FAILED:
            alert.status = AlertStatus.CANCELLED
            alert.last_error = "The refund failed at the payment gateway."
            alert.next_attempt_at = None
            alert.save(update_fields=["status", "last_error", "next_attempt_at"])
            return alert
        if alert.refund is not None and alert.refund.status != RefundStatus.SUCCEEDED:
            return alert  # Told only once the money went back; settling queues it again.
        alert.attempts += 1
        try:
            _deliver(alert, alert_message(alert))
        except PERMANENT_ERRORS as exc:
            alert.status = AlertStatus.FAILED
            alert.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            alert.next_attempt_at = None
            alert.save(update_fields=["status", "attempts", "last_error", "next_attempt_at"])
            log.error("customer alert %s failed for good: %s", alert.pk, exc)
            return alert
        except Exception as exc:
            alert.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            alert.save(update_fields=["attempts", "last_error"])
            failure = exc
        else:
            alert.status = AlertStatus.SENT
            alert.sent_at = timezone.now()
            alert.last_error = ""
            alert.next_attempt_at = None
            alert.save(update_fields=["status", "sent_at", "attempts", "last_error",
                                      "next_attempt_at"])
            return alert
    # Outside the transaction, so the recorded attempt stays.
    raise AlertDeliveryError(alert.last_error) from failure


def alert_retry_at(*, alert_id: int, when: datetime) -> bool:
    """Record when a still-pending alert's retry is due: beat leaves it alone till then."""
    return bool(CustomerAlert.objects.filter(pk=alert_id, status=AlertStatus.PENDING)
                .update(next_attempt_at=when))


def alert_give_up(*, alert_id: int) -> bool:
    """Mark a still-pending alert failed (retries exhausted): staff resend it."""
    return bool(CustomerAlert.objects.filter(pk=alert_id, status=AlertStatus.PENDING)
                .update(status=AlertStatus.FAILED, next_attempt_at=None))


def alerts_pending(*, older_than: timedelta = timedelta(0), grace: timedelta = RETRY_GRACE):
    """Pending alerts that could be sent now: no refund, or a refund that succeeded; and
    no retry scheduled, or one overdue by more than `grace` (lost with its worker)."""
    now = timezone.now()
    return CustomerAlert.objects.filter(
        Q(refund__isnull=True) | Q(refund__status=RefundStatus.SUCCEEDED),
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now - grace),
        status=AlertStatus.PENDING, created_at__lte=now - older_than,
    ).order_by("created_at", "pk")


@dataclass
class RequeueResult:
    found: int
    queued: int


def alerts_requeue(*, older_than: timedelta = timedelta(0), limit: int = 1000,
                   grace: timedelta = RETRY_GRACE) -> RequeueResult:
    """Queue again the alerts left pending (the broker was down, a worker died).

    Only past-due ones (`alerts_pending`). Each is claimed first: rows locked by a send
    in progress are skipped, the others get `next_attempt_at` = now + `grace`, so
    another run within that time does not queue them twice. What could not be queued
    (broker down) is released at once for the next run."""
    with transaction.atomic():
        ids = list(
            alerts_pending(older_than=older_than, grace=grace)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:limit]
        )
        hold = timezone.now() + grace
        CustomerAlert.objects.filter(pk__in=ids).update(next_attempt_at=hold)
    queued = _enqueue(ids)
    if missed := ids[queued:]:
        CustomerAlert.objects.filter(pk__in=missed, next_attempt_at=hold).update(
            next_attempt_at=None)
    return RequeueResult(found=len(ids), queued=queued)


@dataclass
class ResendResult:
    queued: list[int]
    skipped: list[int]


def alerts_resend(*, alert_ids: Iterable[int]) -> ResendResult:
    """Staff's "resend": failed or pending alerts go back to pending and are queued.

    A sent alert is never sent again, nor one whose refund failed.
    """
    with transaction.atomic():
        alerts = list(CustomerAlert.objects.select_for_update()
                      .filter(pk__in=list(alert_ids)).order_by("pk"))
        queued = [a.pk for a in alerts
                  if a.status in (AlertStatus.FAILED, AlertStatus.PENDING)]
        skipped = [a.pk for a in alerts if a.pk not in queued]
        CustomerAlert.objects.filter(pk__in=queued).update(status=AlertStatus.PENDING)
        if queued:
            transaction.on_commit(lambda: _enqueue(queued))
    return ResendResult(queued=queued, skipped=skipped)
