"""A worker killed (SIGKILL) after an SMS went out and before its outcome was recorded:
the outcome is unknown, so the SMS is never sent again on the system's own; beat marks
it `unknown` for staff, who record it sent (or resend it)."""

from __future__ import annotations

import io
import time

from django.core.management import call_command

from refunds.models import CustomerAlert
from refunds.services.alerts import alerts_mark_sent
from tests.alerts.conftest import wait_for
from tests.books import assert_books_balance
from tests.factories import SaleFactory

from .conftest import refund_alerted_through, worker_with_faults

QUIET = 1.5


def test_an_sms_whose_sender_died_is_not_sent_again_but_goes_to_staff(
    worker, redis_broker_url, tmp_path,
):
    sale = SaleFactory(lines=[(1, 2500)])
    hanging = {"SMS_BACKEND": "tests.faults.backends.HangingSmsBackend",
               "ALERT_SEND_TIMEOUT": "1"}
    with worker_with_faults(tmp_path, redis_broker_url, **hanging) as (victim, markers):
        refund = refund_alerted_through(victim, redis_broker_url, sale.pk)
        wait_for(lambda: (markers / "sms-sent").exists(),
                 what=f"the SMS to go out\n{victim.output()[-3000:]}")
        victim.process.kill()
        victim.process.wait(10)
        assert len(victim.sms()) == 1 and len(victim.emails()) == 1
    text = CustomerAlert.objects.get(refund=refund, channel="sms")
    assert (text.status, text.attempts) == ("sending", 1)
    assert CustomerAlert.objects.get(refund=refund, channel="email").status == "sent"

    time.sleep(1.1)  # past the victim's ALERT_SEND_TIMEOUT
    out = io.StringIO()
    call_command("retry_alerts", stdout=out)  # one beat cycle, the healthy worker up
    assert "alerts of unknown outcome (for staff): 1" in out.getvalue()
    call_command("retry_alerts", stdout=io.StringIO())
    time.sleep(QUIET)
    text.refresh_from_db()
    assert text.status == "unknown" and text.attempts == 1
    assert worker.sms() == [] and worker.emails() == []  # never sent again on its own

    assert alerts_mark_sent(alert_ids=[text.pk]) == [text.pk]  # staff found it delivered
    text.refresh_from_db()
    assert text.status == "sent"
    assert_books_balance(sale_ids=[sale.pk])
