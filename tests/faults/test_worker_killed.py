"""A worker killed (SIGKILL) between the gateway's answer and the refund's finalisation.

The test holds the sale's row lock, so the worker saves the gateway's answer on the
allocation and then waits for that lock inside `refund_finalise`: it is killed exactly
there. Then one beat cycle (`refunds_resettle`, on a healthy worker) must finish the
refund as the first run would have: paid -> succeeded and the customer told once;
declined -> failed with every counter released, never "needs attention".
"""

from __future__ import annotations

import time

import pytest

from refunds.gateways import SandboxGateway
from refunds.models import AlertStatus, CustomerAlert, Refund, RefundPayment
from refunds.services import RefundOptions, refund_create
from refunds.services.settle import refunds_needing_attention, refunds_resettle, refunds_unsettled
from refunds.tasks import settle_refund
from sales.models import Payment
from tests.alerts.conftest import DEAD_BROKER_URL, celery_producer, running_worker, wait_for
from tests.alerts.counters import counters
from tests.books import assert_books_balance
from tests.factories import CustomerFactory, ProductFactory, SaleFactory

from .conftest import sale_row_locked, waiting_for_a_lock

ALERT = RefundOptions(alert_customer=True)
QUIET = 1.5


def kill_between_answer_and_finalisation(refund: Refund, tmp_path, broker_url) -> None:
    with running_worker(tmp_path / "victim", broker_url) as victim, \
            sale_row_locked(refund.sale_id):
        with celery_producer(broker_url, queue=victim.queue):
            settle_refund.delay(refund.pk)
        wait_for(lambda: not RefundPayment.objects.filter(refund=refund, online=True,
                                                          status="pending").exists(),
                 what=f"the gateway's answer\n{victim.output()[-3000:]}")
        wait_for(waiting_for_a_lock, what="the worker to wait for the sale's lock")
        victim.process.kill()
        victim.process.wait(10)


@pytest.mark.parametrize("answer", ["paid", "declined"])
def test_a_worker_killed_after_the_answer_is_finished_by_one_beat_cycle(
    worker, redis_broker_url, tmp_path, answer,
):
    product = ProductFactory(stock=10)
    sale = SaleFactory(lines=[(3, 1000)], product=product, gateway="sandbox",
                       shipping_fee=499)
    if answer == "declined":
        Payment.objects.filter(sale=sale).update(gateway_reference="fail")
    before = counters(sale)
    with celery_producer(DEAD_BROKER_URL):  # settled below, by the worker we kill
        refund = refund_create(sale_id=sale.pk, options=ALERT).refund

    kill_between_answer_and_finalisation(refund, tmp_path, redis_broker_url)

    # Stuck as the fault left it: answered, not finalised; and not "needs attention".
    allocation = RefundPayment.objects.get(refund=refund)
    assert allocation.status == ("succeeded" if answer == "paid" else "failed")
    assert Refund.objects.get(pk=refund.pk).status == "pending"
    assert not refunds_needing_attention().filter(pk=refund.pk).exists()
    assert list(refunds_unsettled().values_list("pk", flat=True)) == [refund.pk]
    assert_books_balance(sale_ids=[sale.pk])

    assert refunds_resettle() == 1  # one beat cycle, on the healthy worker
    final = "succeeded" if answer == "paid" else "failed"
    wait_for(lambda: Refund.objects.get(pk=refund.pk).status == final,
             what=f"the refund to be {final}\n{worker.output()[-3000:]}")
    assert SandboxGateway.ledger(allocation.idempotency_key)["calls"] == 1  # not asked again
    alerts = CustomerAlert.objects.filter(refund=refund)
    if answer == "paid":
        wait_for(lambda: not alerts.exclude(status=AlertStatus.SENT).exists(),
                 what="the customer to be told")
        time.sleep(QUIET)
        assert len(worker.emails()) == 1 and len(worker.sms()) == 1
    else:
        assert set(alerts.values_list("status", flat=True)) == {"cancelled"}
        assert counters(sale) == before  # every unit and penny released
        time.sleep(QUIET)
        assert worker.emails() == [] and worker.sms() == []
    assert refunds_resettle() == 0  # nothing left for the next cycle
    assert_books_balance(sale_ids=[sale.pk])


def test_needs_attention_only_when_money_really_went_back(worker, redis_broker_url, tmp_path):
    sale = SaleFactory(lines=[(2, 1000)], tax_rate="0", customer=CustomerFactory(), payments=[
        {"amount": 1200, "method": "card", "gateway": "sandbox"},
        {"amount": 800, "method": "card", "gateway": "sandbox"},
    ])
    Payment.objects.filter(pk=Payment.objects.filter(sale=sale).order_by("pk").last().pk
                           ).update(gateway_reference="fail")
    with celery_producer(DEAD_BROKER_URL):
        refund = refund_create(sale_id=sale.pk, options=ALERT).refund

    kill_between_answer_and_finalisation(refund, tmp_path, redis_broker_url)

    assert sorted(RefundPayment.objects.filter(refund=refund).values_list(
        "status", flat=True)) == ["failed", "succeeded"]
    # £12 went back, £8 was refused: this one does need staff, and beat leaves it alone.
    assert list(refunds_needing_attention().values_list("pk", flat=True)) == [refund.pk]
    assert refunds_resettle() == 0
    time.sleep(QUIET)
    assert Refund.objects.get(pk=refund.pk).status == "pending"
    assert worker.emails() == []
    assert_books_balance(sale_ids=[sale.pk])
