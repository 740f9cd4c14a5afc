"""The alerts outbox in-process (eager Celery): written with the refund, sent once,
retried, failed visibly, re-queued; told only once the money went back."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connections, transaction
from kombu.exceptions import OperationalError as BrokerError

from backoffice import sms
from refunds.models import AlertStatus, CustomerAlert, Refund
from refunds.services import RefundOptions, refund_create, sale_cancel
from refunds.services.alerts import alert_send, alerts_resend
from refunds.tasks import (
    ALERT_MAX_RETRIES,
    requeue_pending_alerts,
    resettle_pending_refunds,
    send_customer_alert,
    send_customer_alerts,
)
from sales.models import Payment
from tests.books import assert_books_balance
from tests.factories import CustomerFactory, SaleFactory

from .backends import FlakyEmailBackend

pytestmark = pytest.mark.django_db
ALERT = RefundOptions(alert_customer=True)


@pytest.fixture
def flaky_mail(settings):
    settings.EMAIL_BACKEND = "tests.alerts.backends.FlakyEmailBackend"
    FlakyEmailBackend.failures = 0
    yield FlakyEmailBackend
    FlakyEmailBackend.failures = 0


def refund_with_alert(sale, capture, **kwargs):
    with capture(execute=True):
        return refund_create(sale_id=sale.pk, options=ALERT, **kwargs).refund


def test_refund_with_alert_sends_one_email_and_one_sms(eager, django_capture_on_commit_callbacks):
    sale = SaleFactory(lines=[(1, 2000)])
    refund = refund_with_alert(sale, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1 and len(sms.outbox) == 1
    assert mail.outbox[0].to == [sale.customer.email]
    assert sms.outbox[0].to == sale.customer.phone
    statuses = set(CustomerAlert.objects.filter(refund=refund).values_list("status", flat=True))
    assert statuses == {"sent"}


def test_no_alert_unless_asked_nor_without_a_customer(eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        refund_create(sale_id=SaleFactory().pk)
        refund_create(sale_id=SaleFactory(with_customer=False).pk, options=ALERT)
    assert not CustomerAlert.objects.exists() and mail.outbox == []


def test_only_the_channels_the_customer_has(eager, django_capture_on_commit_callbacks):
    sale = SaleFactory(customer=CustomerFactory(phone=""))
    refund_with_alert(sale, django_capture_on_commit_callbacks)
    assert list(CustomerAlert.objects.values_list("channel", flat=True)) == ["email"]
    assert sms.outbox == []


def test_a_rolled_back_refund_writes_and_queues_no_alert(eager,
                                                          django_capture_on_commit_callbacks):
    sale = SaleFactory()
    with (django_capture_on_commit_callbacks(execute=True) as callbacks,
          pytest.raises(RuntimeError), transaction.atomic()):
        refund_create(sale_id=sale.pk, options=ALERT)
        raise RuntimeError("boom")
    assert callbacks == [] and not CustomerAlert.objects.exists() and mail.outbox == []


def test_the_send_task_run_twice_sends_once(eager, django_capture_on_commit_callbacks):
    refund = refund_with_alert(SaleFactory(), django_capture_on_commit_callbacks)
    alert = CustomerAlert.objects.get(refund=refund, channel="email")
    send_customer_alert.apply(args=[alert.pk])
    send_customer_alert.apply(args=[alert.pk])
    assert len(mail.outbox) == 1
    alert.refresh_from_db()
    assert alert.attempts == 1


def test_broker_down_keeps_the_refund_and_the_alert_pending(
    eager, django_capture_on_commit_callbacks, monkeypatch
):
    def down(*args, **kwargs):
        raise BrokerError("Error 111 connecting to the broker")

    monkeypatch.setattr(send_customer_alert, "delay", down)
    monkeypatch.setattr(send_customer_alerts, "delay", down)
    refund = refund_with_alert(SaleFactory(), django_capture_on_commit_callbacks)
    assert Refund.objects.get(pk=refund.pk).status == "succeeded"
    assert set(CustomerAlert.objects.values_list("status", flat=True)) == {"pending"}
    with pytest.raises(Exception, match="could not be queued"):
        call_command("retry_alerts")  # still down: says so, exits non-zero

    monkeypatch.undo()
    call_command("retry_alerts")
    assert set(CustomerAlert.objects.values_list("status", flat=True)) == {"sent"}
    assert len(mail.outbox) == 1
    call_command("retry_alerts")  # nothing left: nothing sent again
    assert len(mail.outbox) == 1
    assert_books_balance()


def test_beat_requeues_only_alerts_older_than_its_interval(eager,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # never queued
        refund_create(sale_id=SaleFactory().pk, options=ALERT)
    assert requeue_pending_alerts.apply(kwargs={"older_than": 3600}).get() == 0
    assert requeue_pending_alerts.apply(kwargs={"older_than": 0}).get() == 2
    assert len(mail.outbox) == 1 and len(sms.outbox) == 1


def test_a_transient_failure_is_recorded_then_retried(eager, flaky_mail,
                                                      django_capture_on_commit_callbacks):
    flaky_mail.failures = 1
    refund = refund_with_alert(SaleFactory(), django_capture_on_commit_callbacks)
    alert = CustomerAlert.objects.get(refund=refund, channel="email")
    assert alert.status == "sent" and alert.attempts == 2 and alert.last_error == ""
    assert len(mail.outbox) == 1


def test_retries_run_out_then_failed_is_visible_and_resend_sends_it(
    eager, flaky_mail, django_capture_on_commit_callbacks, admin_client
):
    flaky_mail.failures = -1
    refund = refund_with_alert(SaleFactory(), django_capture_on_commit_callbacks)
    alert = CustomerAlert.objects.get(refund=refund, channel="email")
    assert alert.status == "failed"
    assert alert.attempts == ALERT_MAX_RETRIES + 1
    assert "mail server down" in alert.last_error

    page = admin_client.get("/admin/refunds/customeralert/?attention=yes")
    assert page.status_code == 200
    assert "mail server down" in page.text and f">{alert.pk}<" in page.text

    flaky_mail.failures = 0
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/refunds/customeralert/", {
            "action": "resend", "_selected_action": [alert.pk],
        }, follow=True)
    assert "1 alert(s) queued" in response.text
    alert.refresh_from_db()
    assert alert.status == "sent" and len(mail.outbox) == 1


def test_resend_never_sends_a_sent_alert_again(eager, django_capture_on_commit_callbacks):
    refund = refund_with_alert(SaleFactory(), django_capture_on_commit_callbacks)
    ids = list(CustomerAlert.objects.filter(refund=refund).values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        result = alerts_resend(alert_ids=ids)
    assert result.queued == [] and sorted(result.skipped) == sorted(ids)
    assert len(mail.outbox) == 1


def test_a_rejected_sms_fails_at_once(eager, settings, django_capture_on_commit_callbacks,
                                      monkeypatch):
    def reject(self, to, body):
        raise sms.SmsRejectedError("not a mobile number")

    monkeypatch.setattr(sms.LocmemBackend, "send", reject)
    refund = refund_with_alert(SaleFactory(), django_capture_on_commit_callbacks)
    alert = CustomerAlert.objects.get(refund=refund, channel="sms")
    assert alert.status == "failed" and alert.attempts == 1
    assert "not a mobile number" in alert.last_error


def test_an_online_refund_alerts_only_once_it_succeeded(django_capture_on_commit_callbacks,
                                                        settings):
    from backoffice.celery import app

    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox")
    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            refund = refund_create(sale_id=sale.pk, options=ALERT).refund
        assert refund.status == "pending"
        alert = CustomerAlert.objects.get(refund=refund, channel="email")
        assert alert_send(alert_id=alert.pk).status == "pending"  # not before the money
        assert mail.outbox == []
        with django_capture_on_commit_callbacks(execute=True):
            for callback in callbacks:
                callback()  # settle with the gateway, which then queues the alert
    finally:
        app.conf.task_always_eager = old
    assert Refund.objects.get(pk=refund.pk).status == "succeeded"
    assert len(mail.outbox) == 1
    assert_books_balance()


def test_a_failed_online_refund_cancels_its_alerts(eager, django_capture_on_commit_callbacks):
    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox")
    Payment.objects.filter(sale=sale).update(gateway_reference="fail")
    refund = refund_with_alert(sale, django_capture_on_commit_callbacks)
    assert Refund.objects.get(pk=refund.pk).status == "failed"
    assert set(CustomerAlert.objects.values_list("status", flat=True)) == {"cancelled"}
    assert mail.outbox == [] and sms.outbox == []
    assert_books_balance()


def test_a_pending_online_refund_is_settled_again_by_beat(eager,
                                                          django_capture_on_commit_callbacks):
    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox")
    with django_capture_on_commit_callbacks(execute=False):  # the broker was down
        refund = refund_create(sale_id=sale.pk, options=ALERT).refund
    assert resettle_pending_refunds.apply(kwargs={"older_than": 3600}).get() == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert resettle_pending_refunds.apply(kwargs={"older_than": 0}).get() == 1
    assert Refund.objects.get(pk=refund.pk).status == "succeeded"
    assert len(mail.outbox) == 1
    assert_books_balance()


def test_cancel_alerts_with_the_cancel_event(eager, django_capture_on_commit_callbacks):
    sale = SaleFactory(lines=[(2, 1000)])
    with django_capture_on_commit_callbacks(execute=True):
        sale_cancel(sale_id=sale.pk, reason="customer", alert_customer=True)
        sale_cancel(sale_id=sale.pk, reason="customer", alert_customer=True)  # no-op
    assert set(CustomerAlert.objects.values_list("event", flat=True)) == {"sale_cancelled"}
    assert len(mail.outbox) == 1 and "cancelled" in mail.outbox[0].subject
    assert_books_balance()


def test_unpaid_sale_cancelled_alerts_without_money(eager, django_capture_on_commit_callbacks):
    sale = SaleFactory(lines=[(2, 1000)], paid=False)
    with django_capture_on_commit_callbacks(execute=True):
        sale_cancel(sale_id=sale.pk, reason="customer", alert_customer=True)
    assert len(mail.outbox) == 1
    assert "refunded" not in mail.outbox[0].body and "Item 1" in mail.outbox[0].body
    assert_books_balance()


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_one_alert_send_it_once(postgres, eager):
    sale = SaleFactory()
    refund = refund_create(sale_id=sale.pk).refund  # no alert asked: add one by hand
    alert = CustomerAlert.objects.create(sale=sale, refund=refund, event="refund_created",
                                         channel="email", recipient="a@example.com")
    barrier = threading.Barrier(4)

    def send():
        try:
            barrier.wait()
            alert_send(alert_id=alert.pk)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(mail.outbox) == 1
    alert.refresh_from_db()
    assert alert.status == AlertStatus.SENT and alert.attempts == 1
