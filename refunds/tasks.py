"""Celery tasks: take ids, call services."""

from __future__ import annotations

from celery import shared_task

from .gateways import GatewayUnavailableError
from .services.alerts import alert_send
from .services.settle import refund_settle


@shared_task(
    bind=True, autoretry_for=(GatewayUnavailableError,), retry_backoff=True,
    retry_backoff_max=600, max_retries=10, acks_late=True,
)
def settle_refund(self, refund_id: int) -> str:
    refund = refund_settle(refund_id=refund_id)
    return refund.status


@shared_task(bind=True, retry_backoff=True, max_retries=5, acks_late=True)
def send_customer_alert(self, alert_id: int) -> str | None:
    try:
        alert = alert_send(alert_id=alert_id)
    except Exception as exc:
        raise self.retry(exc=exc) from exc
    return alert.status if alert else None
