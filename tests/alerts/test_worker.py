"""Against a REAL Celery worker on Redis (not eager), on the PostgreSQL test database.

The worker runs in a subprocess (see conftest.celery_worker); what it emails and texts
lands in files this test reads. Each test waits for the worker to finish its work.
"""

from __future__ import annotations

import time

import pytest
from celery.signals import before_task_publish
from django.core.management import call_command
from django.db import transaction

from refunds.gateways import SandboxGateway
from refunds.models import AlertStatus, CustomerAlert, Refund, RefundPayment
from refunds.services import RefundOptions, refund_create, sale_cancel
from refunds.tasks import send_customer_alert, send_customer_alerts
from sales.models import Payment
from tests.books import assert_books_balance
from tests.factories import ProductFactory, SaleFactory

from .conftest import DEAD_BROKER_URL, celery_producer, wait_for
from .counters import counters

ALERT = RefundOptions(alert_customer=True)
QUIET = 1.5  # seconds to let a worker show it does NOT send something more


def all_alerts_sent():
    return not CustomerAlert.objects.exclude(status=AlertStatus.SENT).exists()


def test_a_refund_with_alert_produces_exactly_one_email(worker):
    sale = SaleFactory(lines=[(2, 1500), (1, 500)])
    line = sale.lines.order_by("pk").first()

    refund = refund_create(sale_id=sale.pk, items={line.pk: 2}, options=ALERT).refund

    wait_for(lambda: worker.emails() and worker.sms() and all_alerts_sent(),
             what=f"the alert to be sent\n{worker.output()[-3000:]}")
    time.sleep(QUIET)
    emails = worker.emails()
    assert len(emails) == 1 and len(worker.sms()) == 1
    assert sale.number in emails[0] and "£36.00" in emails[0]  # 2 x 15.00 + 20% tax
    assert "text/html" in emails[0]
    email_alert = CustomerAlert.objects.get(refund=refund, channel="email")
    assert email_alert.attempts == 1 and email_alert.sent_at is not None
    assert worker.alert_ids_emailed() == [email_alert.pk]
    assert_books_balance()


def test_broker_down_at_refund_time_then_retry_alerts_sends_it(worker):
    sale = SaleFactory(lines=[(1, 2000)])

    with celery_producer(DEAD_BROKER_URL):
        started = time.monotonic()
        refund = refund_create(sale_id=sale.pk, options=ALERT).refund
        assert time.monotonic() - started < 15  # a dead broker does not hang the refund

    refund.refresh_from_db()
    assert refund.status == "succeeded"  # committed despite the broker
    alerts = CustomerAlert.objects.filter(refund=refund)
    assert [a.status for a in alerts] == ["pending", "pending"]
    time.sleep(QUIET)
    assert worker.emails() == []

    call_command("retry_alerts")  # the broker is back

    wait_for(lambda: worker.emails() and all_alerts_sent(), what="the re-queued alert")
    time.sleep(QUIET)
    assert len(worker.emails()) == 1 and len(worker.sms()) == 1
    assert_books_balance()


def test_broker_down_for_an_online_refund_is_settled_by_retry_alerts(worker):
    sale = SaleFactory(lines=[(1, 2000)], gateway="sandbox")

    with celery_producer(DEAD_BROKER_URL):
        refund = refund_create(sale_id=sale.pk, options=ALERT).refund
    assert Refund.objects.get(pk=refund.pk).status == "pending"

    call_command("retry_alerts", "--refunds")

    wait_for(lambda: Refund.objects.get(pk=refund.pk).status == "succeeded",
             what="the refund to settle")
    wait_for(lambda: worker.emails() and all_alerts_sent(), what="the alert")
    time.sleep(QUIET)
    assert len(worker.emails()) == 1
    assert_books_balance()


def test_a_rolled_back_refund_produces_no_alert(worker):
    doomed, control = SaleFactory(lines=[(1, 1000)]), SaleFactory(lines=[(1, 1000)])
    published: list[int] = []

    def record(sender=None, body=None, **_):
        if sender == send_customer_alert.name:
            published.append(body[0][0])  # protocol 2: (args, kwargs, embed)
        elif sender == send_customer_alerts.name:
            published.extend(body[0][0])  # a refund's alerts in one message

    before_task_publish.connect(record)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            refund_create(sale_id=doomed.pk, options=ALERT)
            raise RuntimeError("something after the refund failed")

        assert not Refund.objects.filter(sale=doomed).exists()
        assert not CustomerAlert.objects.exists()
        assert published == []  # nothing was even queued for the rolled-back refund
        refund = refund_create(sale_id=control.pk, options=ALERT).refund
        wait_for(lambda: worker.emails() and all_alerts_sent(), what="the control alert")
        time.sleep(QUIET)
    finally:
        before_task_publish.disconnect(record)
    control_alerts = CustomerAlert.objects.filter(refund=refund)
    assert sorted(published) == sorted(a.pk for a in control_alerts)
    control_alert = control_alerts.get(channel="email")
    assert worker.alert_ids_emailed() == [control_alert.pk]
    assert_books_balance()


def test_the_send_task_run_twice_sends_once(worker):
    sale = SaleFactory(lines=[(1, 1000)])
    refund = refund_create(sale_id=sale.pk, options=ALERT).refund
    wait_for(lambda: worker.emails() and all_alerts_sent(), what="the first send")
    alert = CustomerAlert.objects.get(refund=refund, channel="email")

    results = [send_customer_alert.delay(alert.pk), send_customer_alert.delay(alert.pk)]

    for result in results:
        wait_for(lambda r=result: worker.task_done(r.id), what=f"task {result.id}")
    assert worker.alert_ids_emailed() == [alert.pk]
    alert.refresh_from_db()
    assert alert.status == "sent" and alert.attempts == 1
    assert_books_balance()


@pytest.mark.parametrize("how", ["partial", "full", "cancel"])
def test_a_gateway_failure_leaves_every_counter_as_before(worker, how):
    product = ProductFactory(stock=10)
    sale = SaleFactory(lines=[(3, 1000), (2, 750)], product=product, gateway="sandbox",
                       shipping_fee=499, processing_fee=150)
    Payment.objects.filter(sale=sale).update(gateway_reference="fail")
    before = counters(sale)

    if how == "cancel":
        refund = sale_cancel(sale_id=sale.pk, reason="customer", alert_customer=True).refund
    elif how == "full":
        refund = refund_create(sale_id=sale.pk, options=ALERT).refund
    else:
        line = sale.lines.order_by("pk").first()
        refund = refund_create(sale_id=sale.pk, items={line.pk: 2}, options=ALERT).refund
    assert refund.status == "pending"  # the worker settles it, not this process

    wait_for(lambda: Refund.objects.get(pk=refund.pk).status == "failed",
             what=f"the refund to fail\n{worker.output()[-3000:]}")
    assert counters(sale) == before
    assert set(CustomerAlert.objects.filter(refund=refund).values_list("status", flat=True)) \
        == {"cancelled"}
    time.sleep(QUIET)
    assert worker.emails() == [] and worker.sms() == []
    assert_books_balance()


def test_a_gateway_timeout_then_retry_does_not_refund_twice(worker):
    sale = SaleFactory(lines=[(2, 1000)], gateway="sandbox")
    Payment.objects.filter(sale=sale).update(gateway_reference="timeout-once")

    refund = refund_create(sale_id=sale.pk, options=ALERT).refund

    wait_for(lambda: Refund.objects.get(pk=refund.pk).status == "succeeded", timeout=60,
             what=f"the retried settlement\n{worker.output()[-3000:]}")
    allocation = RefundPayment.objects.get(refund=refund)
    assert allocation.attempts == 2  # asked, timed out, asked again with the same key
    ledger = SandboxGateway.ledger(allocation.idempotency_key)
    assert ledger["calls"] == 2 and ledger["outcome"] == "refunded"
    assert ledger["amount"] == allocation.amount == refund.total  # moved once, not twice
    assert allocation.gateway_reference == ledger["reference"]
    assert Payment.objects.get(sale=sale).refunded_amount == refund.total
    wait_for(lambda: worker.emails() and all_alerts_sent(), what="the alert after success")
    time.sleep(QUIET)
    assert len(worker.emails()) == 1
    assert_books_balance()
