"""The same real worker on RabbitMQ (AMQP) instead of Redis: a shop may run either.

The worker fixture (conftest.celery_worker) takes its broker from `redis_broker_url`;
this module points it at RabbitMQ (RABBITMQ_TEST_URL, default the local guest account).
"""

from __future__ import annotations

import os
import time

import pytest

from refunds.models import AlertStatus, CustomerAlert
from refunds.services import RefundOptions, refund_create
from sales.models import Payment
from tests.books import assert_books_balance
from tests.factories import SaleFactory

from .conftest import need, wait_for
from .counters import counters

QUIET = 1.5


@pytest.fixture(scope="module")
def redis_broker_url() -> str:  # the name the worker fixtures ask for
    url = os.environ.get("RABBITMQ_TEST_URL", "amqp://guest:guest@127.0.0.1:5672//")
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any failure means no broker here
        need(f"RabbitMQ at {url} ({exc})")
    return url


def test_a_refund_with_alert_produces_exactly_one_email_over_amqp(worker):
    sale = SaleFactory(lines=[(2, 1500)])
    refund = refund_create(sale_id=sale.pk, options=RefundOptions(alert_customer=True)).refund
    wait_for(lambda: worker.emails() and not CustomerAlert.objects.exclude(
        status=AlertStatus.SENT).exists(), what=f"the alert\n{worker.output()[-3000:]}")
    time.sleep(QUIET)
    assert len(worker.emails()) == 1 and len(worker.sms()) == 1
    assert worker.alert_ids_emailed() == [
        CustomerAlert.objects.get(refund=refund, channel="email").pk]
    assert_books_balance()


def test_a_gateway_refusal_over_amqp_leaves_every_counter_as_before(worker):
    sale = SaleFactory(lines=[(2, 1000)], gateway="sandbox")
    Payment.objects.filter(sale=sale).update(gateway_reference="fail")
    before = counters(sale)
    refund = refund_create(sale_id=sale.pk).refund
    wait_for(lambda: refund.__class__.objects.get(pk=refund.pk).status == "failed",
             what=f"the refund to fail\n{worker.output()[-3000:]}")
    assert counters(sale) == before
    assert_books_balance()
