"""Celery tasks: take ids, call services.

- `settle_refund`: ask the gateway for a refund's online allocations (outside any
  transaction), then settle it. A timeout or outage (GatewayUnavailableError) is retried
  with exponential backoff, always with the same idempotency key.
- `send_customer_alert`: send one alert at most once (claimed in a committed step, then
  sent, then the outcome recorded); a send the provider did not accept is retried with
  backoff, then the alert is marked failed for staff to resend; a send whose outcome
  could not be recorded (the database went away) is retried as "record only", never
  as a second send.
- `send_customer_alerts`: a refund's alerts, first attempt, in one message; a failure
  goes on to send_customer_alert's retries.
- `requeue_pending_alerts`, `resettle_pending_refunds`: run by beat, they queue again
  what a broker outage or a dead worker left pending.

Tasks import the services inside their bodies (services queue tasks through
refunds/services/queue.py, which imports this module lazily): the arrows point one way,
tasks -> services, and no import cycle is held together at load time.

Before a task retries it records when the retry is due (`next_attempt_at`), and beat
leaves that row alone until then (plus a grace): one retry chain per alert or refund,
so ALERT_MAX_RETRIES and the backoff hold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from .gateways import GatewayUnavailableError
from .models import AlertStatus

log = logging.getLogger(__name__)

ALERT_MAX_RETRIES = 6  # ~1+2+4+8+16+32 s of backoff, then failed (staff resend)
SETTLE_MAX_RETRIES = 10  # ~10 minutes of backoff, then left pending: beat takes over
# No retry waits longer: a task waiting for its countdown is held unacknowledged by its
# worker, and must not outlast the broker's visibility timeout (settings, Celery block).
RETRY_MAX_COUNTDOWN = 120


def _backoff(retries: int, *, factor: int = 1, maximum: int = RETRY_MAX_COUNTDOWN - 1) -> int:
    return get_exponential_backoff_interval(factor=factor, retries=retries, maximum=maximum,
                                            full_jitter=True) + 1


def _due(countdown: int) -> datetime:
    return timezone.now() + timedelta(seconds=countdown)


def _record(service: Callable[..., object], **kwargs) -> None:
    """Record when a retry is due, best effort: if the database is what failed, the
    task retries all the same (beat may then queue it once more; the work stays once)."""
    try:
        service(**kwargs)
    except (OperationalError, InterfaceError):
        log.warning("could not record the next attempt (%s)", kwargs, exc_info=True)


@shared_task(bind=True, max_retries=SETTLE_MAX_RETRIES, acks_late=True)
def settle_refund(self, refund_id: int) -> str:
    from .services import settle

    try:
        return settle.refund_settle(refund_id=refund_id).status
    except (GatewayUnavailableError, OperationalError, InterfaceError) as exc:
        if self.request.retries >= self.max_retries:
            _record(settle.refund_retry_at, refund_id=refund_id, when=None)  # beat takes over
            raise
        countdown = _backoff(self.request.retries, factor=2)
        _record(settle.refund_retry_at, refund_id=refund_id, when=_due(countdown))
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(bind=True, max_retries=ALERT_MAX_RETRIES, acks_late=True)
def send_customer_alert(self, alert_id: int, outcome: str | None = None,
                        error: str = "") -> str | None:
    """Send the alert; or, given the `outcome` of a send whose record was lost, only
    record it (never send again)."""
    from .services import alerts

    try:
        if outcome is None:
            alert = alerts.alert_send(alert_id=alert_id)
        else:
            alert = alerts.alert_record(alert_id=alert_id, outcome=outcome, error=error)
    except alerts.AlertDeliveryError as exc:
        if self.request.retries >= self.max_retries:
            alerts.alert_give_up(alert_id=alert_id)
            return AlertStatus.FAILED
        countdown = _backoff(self.request.retries)
        _record(alerts.alert_retry_at, alert_id=alert_id, when=_due(countdown))
        raise self.retry(exc=exc, countdown=countdown) from exc
    except alerts.AlertOutcomeNotRecordedError as exc:  # Sent (or not): record it, never resend.
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries),
                         kwargs={"outcome": exc.outcome, "error": exc.error}) from exc
    except (OperationalError, InterfaceError) as exc:  # The database went away.
        countdown = _backoff(self.request.retries)
        _record(alerts.alert_retry_at, alert_id=alert_id, when=_due(countdown))
        raise self.retry(exc=exc, countdown=countdown) from exc
    return alert.status if alert else None


@shared_task(acks_late=True)
def send_customer_alerts(alert_ids: list[int]) -> list[str | None]:
    """A refund's alerts (email and SMS) in one task, so a refund publishes one message,
    not one per channel. This is each alert's first attempt; one that fails goes on to
    its own retry chain (send_customer_alert, counting from its second attempt), and one
    whose outcome could not be recorded to a task that only records it."""
    from .services import alerts

    outcome: list[str | None] = []
    for alert_id in alert_ids:
        try:
            alert = alerts.alert_send(alert_id=alert_id)
        except alerts.AlertOutcomeNotRecordedError as exc:
            send_customer_alert.apply_async(
                (alert_id,), {"outcome": exc.outcome, "error": exc.error},
                countdown=_backoff(0), retries=1)
            outcome.append(AlertStatus.SENDING)
            continue
        except (alerts.AlertDeliveryError, OperationalError, InterfaceError):
            countdown = _backoff(0)
            _record(alerts.alert_retry_at, alert_id=alert_id, when=_due(countdown))
            send_customer_alert.apply_async((alert_id,), countdown=countdown, retries=1)
            outcome.append(AlertStatus.PENDING)
            continue
        outcome.append(alert.status if alert else None)
    return outcome


@shared_task
def requeue_pending_alerts(older_than: int = 60) -> int:
    """Queue again alerts pending for longer than `older_than` seconds."""
    from .services.alerts import alerts_requeue

    return alerts_requeue(older_than=timedelta(seconds=older_than)).queued


@shared_task
def resettle_pending_refunds(older_than: int = 300) -> int:
    """Queue again the settlement of online refunds pending for longer than that."""
    from .services.settle import refunds_resettle

    return refunds_resettle(older_than=timedelta(seconds=older_than))
