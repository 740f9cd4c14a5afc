"""At most once, never lost: an alert is claimed (`sending`, committed) before it goes
out and its outcome recorded after. A send the provider did not accept is retried; one
whose outcome is unknown is never repeated blindly but goes to staff as `unknown`, who
resend it or record it sent; an email keeps one Message-ID over all its attempts."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.utils import timezone

from backoffice import sms
from refunds.models import AlertStatus, CustomerAlert
from refunds.services import RefundOptions, refund_create
from refunds.services.alerts import (
    AlertOutcomeNotRecordedError,
    Outcome,
    alert_message_id,
    alert_record,
    alert_send,
    alerts_mark_sent,
    alerts_pending,
    alerts_requeue,
    alerts_resend,
)
from refunds.tasks import send_customer_alert
from tests.factories import SaleFactory

from .backends import FlakyEmailBackend

pytestmark = pytest.mark.django_db


class NoAnswerEmailBackend(BaseEmailBackend):
    """The message went out; the server's answer never came back."""

    def send_messages(self, messages):
        mail.outbox.extend(messages)
        raise TimeoutError("timed out waiting for 250 OK")


class NoAnswerSmsBackend:
    def send(self, to, body):
        sms.outbox.append(sms.SmsMessage(to=to, body=body))
        raise sms.SmsOutcomeUnknownError("no answer from the provider")


def alerts(capture, channel=None):
    """A refund's alerts (email and SMS), never queued."""
    with capture(execute=False):
        refund = refund_create(sale_id=SaleFactory().pk,
                               options=RefundOptions(alert_customer=True)).refund
    rows = CustomerAlert.objects.filter(refund=refund).order_by("pk")
    return rows.get(channel=channel) if channel else list(rows)


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_send_with_an_unknown_outcome_is_not_repeated_but_goes_to_staff(
    settings, eager, django_capture_on_commit_callbacks, channel,
):
    settings.EMAIL_BACKEND = "tests.alerts.test_outcomes.NoAnswerEmailBackend"
    settings.SMS_BACKEND = "tests.alerts.test_outcomes.NoAnswerSmsBackend"
    alert = alerts(django_capture_on_commit_callbacks, channel)

    assert send_customer_alert.apply(args=[alert.pk]).get() == "unknown"

    alert.refresh_from_db()
    assert alert.status == "unknown" and alert.attempts == 1
    assert alert.last_error.startswith("Outcome unknown, not sent again:")
    assert len(mail.outbox) + len(sms.outbox) == 1  # went out once, never retried
    assert not alerts_pending().filter(pk=alert.pk).exists()  # beat leaves it to staff
    assert alert_send(alert_id=alert.pk).status == "unknown"  # a duplicate task: nothing


def test_staff_resend_an_unknown_alert_or_record_it_sent(django_capture_on_commit_callbacks):
    email, text = alerts(django_capture_on_commit_callbacks)
    CustomerAlert.objects.filter(pk__in=[email.pk, text.pk]).update(status=AlertStatus.UNKNOWN)

    assert alerts_mark_sent(alert_ids=[text.pk]) == [text.pk]
    with django_capture_on_commit_callbacks(execute=False):
        assert alerts_resend(alert_ids=[email.pk, text.pk]).queued == [email.pk]
    email.refresh_from_db()
    text.refresh_from_db()
    assert email.status == "pending" and text.status == "sent" and text.sent_at is not None
    assert alerts_mark_sent(alert_ids=[email.pk, text.pk]) == []  # only unknown ones


def test_an_alert_left_sending_by_a_dead_sender_becomes_unknown_not_resent(
    queued_alerts, django_capture_on_commit_callbacks,
):
    email, text = alerts(django_capture_on_commit_callbacks)
    CustomerAlert.objects.filter(pk=email.pk).update(
        status=AlertStatus.SENDING, attempts=1,
        next_attempt_at=timezone.now() - timedelta(seconds=1))  # its send timed out
    CustomerAlert.objects.filter(pk=text.pk).update(
        status=AlertStatus.SENDING, attempts=1,
        next_attempt_at=timezone.now() + timedelta(seconds=60))  # still being sent

    out = io.StringIO()
    call_command("retry_alerts", stdout=out)
    assert "alerts queued: 0\nalerts of unknown outcome (for staff): 1\n" in out.getvalue()
    assert alerts_requeue().unknown == 0  # once
    assert queued_alerts == []
    email.refresh_from_db()
    text.refresh_from_db()
    assert email.status == "unknown" and text.status == "sending"


def test_a_lost_record_is_written_later_without_sending_again(
    django_capture_on_commit_callbacks,
):
    alert = alerts(django_capture_on_commit_callbacks, "email")
    CustomerAlert.objects.filter(pk=alert.pk).update(status=AlertStatus.SENDING, attempts=1)

    assert send_customer_alert.apply(
        args=[alert.pk], kwargs={"outcome": Outcome.SENT, "error": ""}).get() == "sent"
    alert.refresh_from_db()
    assert alert.status == "sent" and alert.attempts == 1 and mail.outbox == []
    # News that an unknown one went out after all is recorded too; nothing else changes.
    CustomerAlert.objects.filter(pk=alert.pk).update(status=AlertStatus.UNKNOWN)
    assert alert_record(alert_id=alert.pk, outcome=Outcome.SENT).status == "sent"
    assert alert_record(alert_id=alert.pk, outcome=Outcome.NOT_ACCEPTED).status == "sent"


def test_a_database_error_while_recording_raises_the_outcome_for_the_task(
    monkeypatch, django_capture_on_commit_callbacks,
):
    from django.db import OperationalError

    from refunds.services import alerts as alerts_module

    alert = alerts(django_capture_on_commit_callbacks, "email")

    def lost(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(alerts_module, "alert_record", lost)
    with pytest.raises(AlertOutcomeNotRecordedError) as exc:
        alert_send(alert_id=alert.pk)
    assert (exc.value.outcome, exc.value.alert_id) == (Outcome.SENT, alert.pk)
    assert len(mail.outbox) == 1
    alert.refresh_from_db()
    assert alert.status == "sending"  # claimed, nobody else sends it


def test_an_email_keeps_one_message_id_over_its_attempts(
    settings, eager, django_capture_on_commit_callbacks,
):
    settings.EMAIL_BACKEND = "tests.alerts.backends.FlakyEmailBackend"
    FlakyEmailBackend.failures = 1  # refused by the server (not accepted): retried
    try:
        alert = alerts(django_capture_on_commit_callbacks, "email")
        assert send_customer_alert.apply(args=[alert.pk]).get() == "sent"
    finally:
        FlakyEmailBackend.failures = 0
    alert.refresh_from_db()
    assert alert.attempts == 2
    (message,) = mail.outbox
    assert message.message()["Message-ID"] == alert_message_id(alert)
    assert alert_message_id(alert).startswith(f"<customer-alert-{alert.pk}.")
    assert alert_message_id(alert).endswith("@example.com>")


@pytest.fixture
def queued_alerts(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(send_customer_alert, "delay", sent.append)
    return sent


def test_beat_marks_any_number_of_stale_sends_unknown_in_constant_queries(
    queued_alerts, django_capture_on_commit_callbacks, django_assert_max_num_queries,
):
    ids = [a.pk for _ in range(3) for a in alerts(django_capture_on_commit_callbacks)]
    CustomerAlert.objects.filter(pk__in=ids).update(
        status=AlertStatus.SENDING, next_attempt_at=timezone.now() - timedelta(seconds=1))
    with django_assert_max_num_queries(8):
        assert alerts_requeue().unknown == 6
    assert set(CustomerAlert.objects.filter(pk__in=ids).values_list("status", flat=True)) \
        == {"unknown"}
    assert queued_alerts == []
