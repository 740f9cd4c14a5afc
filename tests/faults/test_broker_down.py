"""The broker is down while refunds are made: every refund commits (offline ones
succeed, online ones stay pending), nothing is queued; once it is back, one beat cycle
(`retry_alerts --refunds`) settles the online refunds and sends every alert once."""

from __future__ import annotations

import time

from django.core.management import call_command

from refunds.models import AlertStatus, CustomerAlert, Refund
from refunds.services import RefundOptions, refund_create, sale_cancel
from sales.models import Payment
from tests.alerts.conftest import DEAD_BROKER_URL, celery_producer, wait_for
from tests.books import assert_books_balance
from tests.factories import ProductFactory, SaleFactory

ALERT = RefundOptions(alert_customer=True)
QUIET = 1.5


def test_refunds_commit_while_the_broker_is_down_and_beat_catches_up(worker):
    product = ProductFactory(stock=20)
    offline = SaleFactory(lines=[(3, 1000), (1, 500)], product=product)
    online = SaleFactory(lines=[(2, 1200)], product=product, gateway="sandbox")
    declined = SaleFactory(lines=[(1, 900)], product=product, gateway="sandbox")
    Payment.objects.filter(sale=declined).update(gateway_reference="fail")
    cancelled = SaleFactory(lines=[(1, 700)], gateway="sandbox")
    sales = [offline, online, declined, cancelled]

    with celery_producer(DEAD_BROKER_URL):
        started = time.monotonic()
        first_line = offline.lines.order_by("pk").first()
        refunds = [
            refund_create(sale_id=offline.pk, items={first_line.pk: 2}, options=ALERT).refund,
            refund_create(sale_id=offline.pk, options=ALERT).refund,  # the rest
            refund_create(sale_id=online.pk, options=ALERT).refund,
            refund_create(sale_id=declined.pk, options=ALERT).refund,
            sale_cancel(sale_id=cancelled.pk, reason="customer", alert_customer=True).refund,
        ]
        assert time.monotonic() - started < 30  # a dead broker does not hang the refunds

    statuses = [Refund.objects.get(pk=r.pk).status for r in refunds]
    assert statuses == ["succeeded", "succeeded", "pending", "pending", "pending"]
    assert not CustomerAlert.objects.exclude(status=AlertStatus.PENDING).exists()
    assert_books_balance(sale_ids=[s.pk for s in sales])  # held, not yet settled
    time.sleep(QUIET)
    assert worker.emails() == []

    call_command("retry_alerts", "--refunds")  # the broker is back: one beat cycle

    wait_for(lambda: not Refund.objects.filter(pk__in=[r.pk for r in refunds],
                                               status="pending").exists(),
             what=f"every refund to settle\n{worker.output()[-3000:]}")
    told = CustomerAlert.objects.filter(refund__status="succeeded")
    wait_for(lambda: not told.exclude(status=AlertStatus.SENT).exists(),
             what=f"every alert to be sent\n{worker.output()[-3000:]}")
    time.sleep(QUIET)
    statuses = [Refund.objects.get(pk=r.pk).status for r in refunds]
    assert statuses == ["succeeded", "succeeded", "succeeded", "failed", "succeeded"]
    assert sorted(worker.alert_ids_emailed()) == sorted(
        told.filter(channel="email").values_list("pk", flat=True))  # each once
    assert len(worker.sms()) == told.filter(channel="sms").count()
    assert set(CustomerAlert.objects.filter(refund__status="failed").values_list(
        "status", flat=True)) == {"cancelled"}
    assert_books_balance(sale_ids=[s.pk for s in sales])
