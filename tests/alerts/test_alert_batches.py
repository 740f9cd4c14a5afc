"""A refund's alerts (email and SMS) go to the broker as one message; an alert of it that
fails goes on to its own retry chain while the other is sent."""

from __future__ import annotations

from django.core import mail

from backoffice import sms
from refunds.models import CustomerAlert
from refunds.services import RefundOptions, refund_create
from refunds.tasks import send_customer_alert, send_customer_alerts
from tests.factories import SaleFactory

from .backends import FlakyEmailBackend


def test_a_refund_publishes_one_message_for_all_its_alerts(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    batches: list = []
    singles: list = []
    monkeypatch.setattr(send_customer_alerts, "delay", batches.append)
    monkeypatch.setattr(send_customer_alert, "delay", singles.append)
    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_create(sale_id=SaleFactory().pk,
                               options=RefundOptions(alert_customer=True)).refund
    alerts = sorted(CustomerAlert.objects.filter(refund=refund).values_list("pk", flat=True))
    assert len(alerts) == 2  # email and SMS
    assert batches == [alerts] and singles == []


def test_one_alert_failing_goes_to_its_retry_chain_and_the_other_is_sent(
    db, eager, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.alerts.backends.FlakyEmailBackend"
    FlakyEmailBackend.failures = 1
    retried: list = []
    monkeypatch.setattr(send_customer_alert, "apply_async",
                        lambda args, **options: retried.append((args, options)))
    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_create(sale_id=SaleFactory().pk,
                               options=RefundOptions(alert_customer=True)).refund
    email = CustomerAlert.objects.get(refund=refund, channel="email")
    text = CustomerAlert.objects.get(refund=refund, channel="sms")
    assert text.status == "sent" and len(sms.outbox) == 1
    assert email.status == "pending" and email.attempts == 1 and mail.outbox == []
    assert email.next_attempt_at is not None  # beat leaves it to its retry
    [(args, options)] = retried
    assert args == (email.pk,) and options["retries"] == 1 and options["countdown"] >= 1
