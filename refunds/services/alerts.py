"""Customer alerts: an outbox written with the refund, sent after commit, never twice.

- `alerts_build` makes the rows; the refund or cancel saves them in its own transaction,
  so a rolled-back refund has no alert.
- `alerts_queue` queues the send task once that transaction commits. A broker that is
  down does not break the refund: the alert stays pending and `alerts_requeue` (Celery
  beat, `manage.py retry_alerts`) queues it again later.
- `alert_send` sends at most once, in three steps: claim (a committed transaction: the
  row locked, only a pending alert whose refund succeeded taken, marked `sending`), send
  (outside any transaction; an email with a stable Message-ID), record the outcome. A
  send the provider did not accept is recorded (`attempts`, `last_error`, back to
  `pending`) and raised as `AlertDeliveryError` for the task to retry; a permanent
  refusal marks the alert `failed`; a send whose outcome is unknown (no answer came
  back) marks it `unknown`, never repeated blindly: staff resend it (`alerts_resend`) or
  record it sent (`alerts_mark_sent`). An outcome that could not be written (the
  database went away) is raised as `AlertOutcomeNotRecordedError` for the task to
  record later without sending; an alert left `sending` by a dead sender becomes
  `unknown` after ALERT_SEND_TIMEOUT (`alerts_expire_sending`, run by beat).
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
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import Q
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string
from django.utils import timezone

from backoffice.sms import SmsOutcomeUnknownError, SmsRejectedError, send_sms
from sales.models import Sale

from ..models import AlertChannel, AlertStatus, CustomerAlert, Refund, RefundStatus, RefundType
from .queue import queue_alerts, queue_alerts_each

log = logging.getLogger(__name__)

# Failures that a retry cannot fix: the alert is marked failed at once.
PERMANENT_ERRORS = (
    TemplateDoesNotExist, TemplateSyntaxError, smtplib.SMTPRecipientsRefused, SmsRejectedError,
)


# Failures after which the message may have gone out (the request was sent, no answer
# came back): never repeated blindly, the alert goes to staff as `unknown`.
OUTCOME_UNKNOWN_ERRORS = (
    TimeoutError, smtplib.SMTPServerDisconnected, ConnectionResetError, SmsOutcomeUnknownError,
)

UNKNOWN_PREFIX = "Outcome unknown, not sent again: "

# How long a claimed alert may stay `sending` before beat calls its outcome unknown: well
# above the longest send (EMAIL_TIMEOUT, the SMS backend's timeout).
ALERT_SEND_TIMEOUT = timedelta(seconds=int(getattr(settings, "ALERT_SEND_TIMEOUT", 300)))

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


def alerts_queue(alerts: Sequence[CustomerAlert]) -> None:
    """Queue the sending of these alerts (a refund's or a cancel's: one per channel) once
    the current transaction commits, in one task message."""
    queue_alerts([a.pk for a in alerts if a.pk])


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


def alert_message_id(alert: CustomerAlert) -> str:
    """The email's Message-ID: the same on every attempt, so a provider or a mail client
    that sees it twice can tell, and staff can look it up in the provider's log."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
    return f"<customer-alert-{alert.pk}.{alert.created_at:%Y%m%d%H%M%S}@{domain}>"


def _deliver(alert: CustomerAlert, message: AlertMessage) -> None:
    if alert.channel == AlertChannel.EMAIL:
        email = EmailMultiAlternatives(
            message.subject, message.text, None, [alert.recipient],
            headers={"X-Customer-Alert": str(alert.pk), "Message-ID": alert_message_id(alert)},
        )
        email.attach_alternative(message.html, "text/html")
        email.send()
    else:
        send_sms(alert.recipient, message.sms)


class Outcome(models.TextChoices):
    """What a send attempt came to, as `alert_record` takes it."""

    SENT = "sent"  # the provider accepted it
    REJECTED = "rejected"  # refused for good (bad address, broken template)
    NOT_ACCEPTED = "not_accepted"  # the provider answered no, or was never reached
    UNKNOWN = "unknown"  # the request went out, no answer came back


def _outcome_of(exc: Exception) -> Outcome:
    if isinstance(exc, PERMANENT_ERRORS):
        return Outcome.REJECTED
    if isinstance(exc, OUTCOME_UNKNOWN_ERRORS):
        return Outcome.UNKNOWN
    return Outcome.NOT_ACCEPTED


class AlertOutcomeNotRecordedError(Exception):
    """The send is over but its outcome could not be written (the database went away):
    the task records it later, it never sends again."""

    def __init__(self, alert_id: int, outcome: Outcome, error: str):
        super().__init__(f"outcome {outcome} of alert {alert_id} not recorded")
        self.alert_id, self.outcome, self.error = alert_id, outcome, error


def _alert_claim(alert_id: int) -> tuple[CustomerAlert | None, AlertMessage | None]:
    """Step 1, committed before anything goes out: lock the row; only a pending alert
    whose refund succeeded (or that has none) is claimed (status `sending`, one more
    attempt, looked at again by beat after ALERT_SEND_TIMEOUT). Returns the alert and,
    when claimed, its rendered message."""
    with transaction.atomic():
        alert = (
            CustomerAlert.objects.select_for_update(of=("self",))
            .select_related("sale__customer", "refund").filter(pk=alert_id).first()
        )
        if alert is None or alert.status != AlertStatus.PENDING:
            return alert, None
        if alert.refund is not None and alert.refund.status == RefundStatus.FAILED:
            alert.status = AlertStatus.CANCELLED
            alert.last_error = "The refund failed at the payment gateway."
            alert.next_attempt_at = None
            alert.save(update_fields=["status", "last_error", "next_attempt_at"])
            return alert, None
        if alert.refund is not None and alert.refund.status != RefundStatus.SUCCEEDED:
            return alert, None  # Told only once the money went back; settling queues it.
        try:
            message = alert_message(alert)
        except PERMANENT_ERRORS as exc:
            _apply(alert, Outcome.REJECTED, f"{type(exc).__name__}: {exc}")
            return alert, None
        alert.status = AlertStatus.SENDING
        alert.attempts += 1
        alert.next_attempt_at = timezone.now() + ALERT_SEND_TIMEOUT
        alert.save(update_fields=["status", "attempts", "next_attempt_at"])
        return alert, message


def _apply(alert: CustomerAlert, outcome: str, error: str) -> None:
    """Write an outcome on a locked alert row."""
    alert.last_error = error[:2000]
    alert.next_attempt_at = None
    if outcome == Outcome.SENT:
        alert.status, alert.sent_at, alert.last_error = AlertStatus.SENT, timezone.now(), ""
    elif outcome == Outcome.REJECTED:
        alert.status = AlertStatus.FAILED
        log.error("customer alert %s failed for good: %s", alert.pk, error)
    elif outcome == Outcome.NOT_ACCEPTED:
        alert.status = AlertStatus.PENDING
    else:
        alert.status = AlertStatus.UNKNOWN
        alert.last_error = f"{UNKNOWN_PREFIX}{error}"[:2000]
        log.error("customer alert %s: outcome unknown (%s); needs attention", alert.pk, error,
                  extra={"alert_id": alert.pk, "channel": alert.channel})
    alert.save(update_fields=["status", "sent_at", "last_error", "next_attempt_at"])


def alert_record(*, alert_id: int, outcome: str, error: str = "") -> CustomerAlert | None:
    """Step 3: record what a send came to, on an alert still `sending` (or `unknown`,
    when the news is that it was sent after all). Anything else is left as it is."""
    with transaction.atomic():
        alert = CustomerAlert.objects.select_for_update().filter(pk=alert_id).first()
        if alert is None:
            return None
        if alert.status == AlertStatus.SENDING or (
            alert.status == AlertStatus.UNKNOWN and outcome == Outcome.SENT
        ):
            _apply(alert, outcome, error)
        return alert


def alert_send(*, alert_id: int) -> CustomerAlert | None:
    """Send one alert at most once: claim it (committed), send, record the outcome.

    Raises AlertDeliveryError when the message was not accepted (the alert is pending
    again, for the task to retry), AlertOutcomeNotRecordedError when the outcome could
    not be written (for the task to record it later, without sending).
    """
    alert, message = _alert_claim(alert_id)
    if alert is None or message is None:
        return alert
    outcome, error = Outcome.SENT, ""
    try:
        _deliver(alert, message)
    except Exception as exc:
        outcome, error = _outcome_of(exc), f"{type(exc).__name__}: {exc}"
    try:
        recorded = alert_record(alert_id=alert_id, outcome=outcome, error=error)
    except (OperationalError, InterfaceError) as exc:
        log.warning("could not record the outcome (%s) of alert %s", outcome, alert_id,
                    exc_info=True)
        raise AlertOutcomeNotRecordedError(alert_id, outcome, error) from exc
    if outcome == Outcome.NOT_ACCEPTED:
        raise AlertDeliveryError(error)
    return recorded


def alerts_expire_sending() -> int:
    """Alerts claimed longer than ALERT_SEND_TIMEOUT ago and still `sending`: their
    sender died between the send and the record. Their outcome is unknown: they are not
    sent again but marked `unknown` for staff. Returns how many."""
    with transaction.atomic():
        stale = list(CustomerAlert.objects.select_for_update(skip_locked=True).filter(
            status=AlertStatus.SENDING, next_attempt_at__lte=timezone.now(),
        ).values_list("pk", flat=True))
        CustomerAlert.objects.filter(pk__in=stale).update(
            status=AlertStatus.UNKNOWN, next_attempt_at=None,
            last_error=UNKNOWN_PREFIX + "the sender stopped before recording the outcome")
    if stale:
        log.error("customer alerts %s: outcome unknown (their sender stopped); needs "
                  "attention", stale, extra={"alert_ids": stale})
    return len(stale)


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
    unknown: int = 0  # left `sending` by a dead sender, now `unknown` for staff


def alerts_requeue(*, older_than: timedelta = timedelta(0), limit: int = 1000,
                   grace: timedelta = RETRY_GRACE) -> RequeueResult:
    """Queue again the alerts left pending (the broker was down, a worker died).

    Only past-due ones (`alerts_pending`). Each is claimed first: rows locked by a send
    in progress are skipped, the others get `next_attempt_at` = now + `grace`, so
    another run within that time does not queue them twice. What could not be queued
    (broker down) is released at once for the next run. Alerts left `sending` by a dead
    sender are marked `unknown` first (`alerts_expire_sending`)."""
    unknown = alerts_expire_sending()
    with transaction.atomic():
        ids = list(
            alerts_pending(older_than=older_than, grace=grace)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:limit]
        )
        hold = timezone.now() + grace
        CustomerAlert.objects.filter(pk__in=ids).update(next_attempt_at=hold)
    queued = queue_alerts_each(ids)
    if missed := ids[queued:]:
        CustomerAlert.objects.filter(pk__in=missed, next_attempt_at=hold).update(
            next_attempt_at=None)
    return RequeueResult(found=len(ids), queued=queued, unknown=unknown)


@dataclass
class ResendResult:
    queued: list[int]
    skipped: list[int]


def alerts_resend(*, alert_ids: Iterable[int]) -> ResendResult:
    """Staff's "resend": failed, pending or unknown-outcome alerts go back to pending and
    are queued (for `unknown`, staff checked with the provider that it did not go out).

    A sent alert is never sent again, nor one whose refund failed, nor one being sent.
    """
    with transaction.atomic():
        alerts = list(CustomerAlert.objects.select_for_update()
                      .filter(pk__in=list(alert_ids)).order_by("pk"))
        queued = [a.pk for a in alerts
                  if a.status in (AlertStatus.FAILED, AlertStatus.PENDING, AlertStatus.UNKNOWN)]
        skipped = [a.pk for a in alerts if a.pk not in queued]
        CustomerAlert.objects.filter(pk__in=queued).update(status=AlertStatus.PENDING)
        if queued:
            transaction.on_commit(lambda: queue_alerts_each(queued))
    return ResendResult(queued=queued, skipped=skipped)


def alerts_mark_sent(*, alert_ids: Iterable[int]) -> list[int]:
    """Staff found an unknown-outcome alert in the provider's log: record it as sent.
    Returns the ids marked."""
    with transaction.atomic():
        ids = list(CustomerAlert.objects.select_for_update()
                   .filter(pk__in=list(alert_ids), status=AlertStatus.UNKNOWN)
                   .values_list("pk", flat=True))
        CustomerAlert.objects.filter(pk__in=ids).update(
            status=AlertStatus.SENT, sent_at=timezone.now(), next_attempt_at=None,
            last_error="Recorded as sent by staff (outcome was unknown).")
    return ids
