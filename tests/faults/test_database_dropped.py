"""PostgreSQL drops the worker's connection while an alert is sent: right after the
provider accepted the message, before its outcome is recorded (tests/faults/backends.py,
armed by a marker file). The outcome is recorded later by a task that never sends: one
email and one SMS, each alert `sent` after one attempt."""

from __future__ import annotations

import time

from refunds.models import AlertStatus, CustomerAlert
from tests.alerts.conftest import wait_for
from tests.books import assert_books_balance
from tests.factories import SaleFactory

from .conftest import refund_alerted_through, worker_with_faults

QUIET = 1.5


def test_the_database_dropped_while_an_alert_is_sent_sends_it_once(
    transactional_db, redis_broker_url, tmp_path,
):
    sale = SaleFactory(lines=[(2, 1500)])
    dropping = {"EMAIL_BACKEND": "tests.faults.backends.DroppingEmailBackend",
                "SMS_BACKEND": "tests.faults.backends.DroppingSmsBackend"}
    with worker_with_faults(tmp_path, redis_broker_url, **dropping) as (worker, markers):
        (markers / "email").touch()
        (markers / "sms").touch()
        refund = refund_alerted_through(worker, redis_broker_url, sale.pk)
        alerts = CustomerAlert.objects.filter(refund=refund)
        wait_for(lambda: alerts.count() == 2
                 and not alerts.exclude(status=AlertStatus.SENT).exists(), timeout=60,
                 what=f"the alerts to be recorded sent\n{worker.output()[-4000:]}")
        time.sleep(QUIET)
        output = worker.output()
        assert list(markers.iterdir()) == []  # both faults happened
        assert output.count("FAULT: terminated database session") == 2
        assert len(worker.emails()) == 1 and len(worker.sms()) == 1
        assert sorted(alerts.values_list("channel", "attempts")) == [("email", 1), ("sms", 1)]
        assert "could not record the outcome" in output
    assert_books_balance(sale_ids=[sale.pk])
