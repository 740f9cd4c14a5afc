"""Customer alerts: an outbox written with the refund, sent after commit, never twice."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction

from sales.models import Sale

from ..models import AlertChannel, CustomerAlert, Refund

log = logging.getLogger(__name__)


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
    """Queue the send task for each alert once the current transaction commits."""
    from ..tasks import send_customer_alert

    ids = [a.pk for a in alerts if a.pk]

    def enqueue() -> None:
        for pk in ids:
            try:
                send_customer_alert.delay(pk)
            except Exception:  # Broker down: the alert stays pending; retry_alerts re-queues.
                log.warning("could not queue customer alert %s; it stays pending", pk,
                            exc_info=True)

    transaction.on_commit(enqueue)


def alert_send(*, alert_id: int) -> CustomerAlert | None:
    """Send one alert at most once: lock the row, skip it unless pending."""
    from django.conf import settings
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.utils import timezone

    with transaction.atomic():
        alert = (
            CustomerAlert.objects.select_for_update(of=("self",))
            .select_related("sale", "refund").filter(pk=alert_id).first()
        )
        if alert is None or alert.status != "pending":
            return alert
        if alert.refund is not None and alert.refund.status != "succeeded":
            return alert  # Told only once the money went back.
        alert.attempts += 1
        context = {"alert": alert, "sale": alert.sale, "refund": alert.refund,
                   "shop_name": settings.SHOP_NAME}
        try:
            body = render_to_string(f"alerts/{alert.event}.txt", context)
            if alert.channel == AlertChannel.EMAIL:
                subject = render_to_string(f"alerts/{alert.event}_subject.txt", context).strip()
                send_mail(subject, body, None, [alert.recipient])
            else:
                log.info("SMS to %s: %s", alert.recipient, body.strip()[:160])
        except Exception as exc:
            alert.last_error = str(exc)[:2000]
            alert.save(update_fields=["attempts", "last_error"])
            raise
        alert.status = "sent"
        alert.sent_at = timezone.now()
        alert.last_error = ""
        alert.save(update_fields=["status", "sent_at", "attempts", "last_error"])
        return alert
