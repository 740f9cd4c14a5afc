"""Celery tasks: take ids, call services.

- `settle_refund`: ask the gateway for a refund's online allocations (outside any
  transaction), then settle it. A timeout or outage (GatewayUnavailableError) is retried
  with exponential backoff, always with the same idempotency key.
- `send_customer_alert`: send one alert at most once; transient failures are retried
  with backoff, then the alert is marked failed for staff to resend.
- `requeue_pending_alerts`, `resettle_pending_refunds`: run by beat, they queue again
  what a broker outage or a dead worker left pending.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import InterfaceError, OperationalError

from .gateways import GatewayUnavailableError
from .models import AlertStatus
from .services.alerts import AlertDeliveryError, alert_give_up, alert_send, alerts_requeue
from .services.settle import refund_settle, refunds_resettle

ALERT_MAX_RETRIES = 6  # ~1+2+4+8+16+32 s of backoff, then failed (staff resend)
SETTLE_MAX_RETRIES = 10  # then left pending: beat asks the gateway again later


def _backoff(retries: int, *, factor: int = 1, maximum: int = 600) -> int:
    return get_exponential_backoff_interval(factor=factor, retries=retries, maximum=maximum,
                                            full_jitter=True) + 1


@shared_task(
    bind=True, autoretry_for=(GatewayUnavailableError, OperationalError, InterfaceError),
    retry_backoff=2, retry_backoff_max=600, retry_jitter=True, max_retries=SETTLE_MAX_RETRIES,
    acks_late=True,
)
def settle_refund(self, refund_id: int) -> str:
    return refund_settle(refund_id=refund_id).status


@shared_task(bind=True, max_retries=ALERT_MAX_RETRIES, acks_late=True)
def send_customer_alert(self, alert_id: int) -> str | None:
    try:
        alert = alert_send(alert_id=alert_id)
    except AlertDeliveryError as exc:
        if self.request.retries >= self.max_retries:
            alert_give_up(alert_id=alert_id)
            return AlertStatus.FAILED
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
    except (OperationalError, InterfaceError) as exc:  # The database went away.
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
    return alert.status if alert else None


@shared_task
def requeue_pending_alerts(older_than: int = 60) -> int:
    """Queue again alerts pending for longer than `older_than` seconds."""
    return alerts_requeue(older_than=timedelta(seconds=older_than)).queued


@shared_task
def resettle_pending_refunds(older_than: int = 300) -> int:
    """Queue again the settlement of online refunds pending for longer than that."""
    return refunds_resettle(older_than=timedelta(seconds=older_than))
