"""The redelivery window: a task held by a worker that died is delivered again once the
broker's visibility timeout has passed (Redis), and that timeout outlasts the longest a
live worker may hold a task (its retry countdown plus its run time)."""

from __future__ import annotations

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from backoffice.celery import app
from refunds import tasks
from refunds.models import Refund, RefundPayment
from refunds.services import refund_create
from refunds.tasks import settle_refund
from tests.alerts.conftest import DEAD_BROKER_URL, celery_producer, running_worker, wait_for
from tests.books import assert_books_balance
from tests.factories import SaleFactory

from .conftest import sale_row_locked, waiting_for_a_lock


def test_the_visibility_timeout_outlasts_the_longest_hold():
    options = app.conf.broker_transport_options
    assert options["visibility_timeout"] == settings.TASK_VISIBILITY_TIMEOUT == 300
    held = tasks.RETRY_MAX_COUNTDOWN + app.conf.task_time_limit
    assert options["visibility_timeout"] > held
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    # No retry waits longer than RETRY_MAX_COUNTDOWN, however many retries came before
    # (full jitter: the largest interval is the cap).
    for retries in range(tasks.SETTLE_MAX_RETRIES + 1):
        assert tasks._backoff(retries, factor=2) <= tasks.RETRY_MAX_COUNTDOWN
    assert get_exponential_backoff_interval(2, 20, tasks.RETRY_MAX_COUNTDOWN - 1) + 1 \
        <= tasks.RETRY_MAX_COUNTDOWN


def test_a_task_of_a_killed_worker_is_delivered_again_after_the_visibility_timeout(
    transactional_db, redis_broker_url, tmp_path,
):
    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox")
    with celery_producer(DEAD_BROKER_URL):
        refund = refund_create(sale_id=sale.pk).refund
    short = {"TASK_VISIBILITY_TIMEOUT": "3"}  # seconds, so that the test need not wait

    with running_worker(tmp_path / "victim", redis_broker_url, **short) as victim:
        with sale_row_locked(sale.pk):
            with celery_producer(redis_broker_url, queue=victim.queue):
                settle_refund.delay(refund.pk)
            wait_for(lambda: RefundPayment.objects.filter(refund=refund,
                                                          status="succeeded").exists(),
                     what=f"the gateway's answer\n{victim.output()[-3000:]}")
            wait_for(waiting_for_a_lock, what="the worker to wait for the sale's lock")
            victim.process.kill()
            victim.process.wait(10)
        assert Refund.objects.get(pk=refund.pk).status == "pending"

        # No beat here: only the broker's redelivery to a new worker on the same queue.
        with running_worker(tmp_path / "heir", redis_broker_url, queue=victim.queue,
                            **short) as heir:
            wait_for(lambda: Refund.objects.get(pk=refund.pk).status == "succeeded",
                     timeout=60, what=f"the redelivered task\n{heir.output()[-3000:]}")
    assert_books_balance(sale_ids=[sale.pk])
