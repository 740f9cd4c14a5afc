"""Retries are scheduled, and beat re-queues only past-due work: a task that retries
records when (`next_attempt_at`), beat leaves the row alone until then (plus a grace),
and what beat queues it claims, so one alert or refund has one retry chain at a time."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import connections, transaction
from django.utils import timezone

from refunds import tasks
from refunds.gateways import GatewayResult, GatewayUnavailableError, SandboxGateway
from refunds.models import CustomerAlert, Refund, RefundPayment
from refunds.services import RefundOptions, refund_create
from refunds.services.alerts import (
    ALERT_SEND_TIMEOUT,
    RETRY_GRACE,
    AlertDeliveryError,
    alert_retry_at,
    alert_send,
    alerts_pending,
    alerts_requeue,
)
from refunds.services.settle import refunds_resettle, refunds_unsettled
from refunds.tasks import (
    ALERT_MAX_RETRIES,
    SETTLE_MAX_RETRIES,
    requeue_pending_alerts,
    resettle_pending_refunds,
    send_customer_alert,
    settle_refund,
)
from sales.models import Payment
from tests.books import assert_books_balance
from tests.factories import SaleFactory

pytestmark = pytest.mark.django_db
ALERT = RefundOptions(alert_customer=True)


@pytest.fixture
def queued(monkeypatch):
    """The broker takes the messages and nobody runs them yet: what was queued, by task."""
    sent: dict[str, list[int]] = {"alerts": [], "refunds": []}
    monkeypatch.setattr(send_customer_alert, "delay", sent["alerts"].append)
    monkeypatch.setattr(settle_refund, "delay", sent["refunds"].append)
    return sent


def pending_alerts(capture) -> list[int]:
    """A refund with an email and an SMS alert, never queued (the broker was down)."""
    with capture(execute=False):
        refund = refund_create(sale_id=SaleFactory().pk, options=ALERT).refund
    return sorted(CustomerAlert.objects.filter(refund=refund).values_list("pk", flat=True))


def pending_online_refund(capture, **sale) -> Refund:
    """An online refund whose settlement was never queued."""
    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox", **sale)
    with capture(execute=False):
        return refund_create(sale_id=sale.pk).refund


def in_seconds(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


# Beat and the alerts it re-queues.

def test_an_alert_is_requeued_only_once_its_retry_is_overdue(
    queued, django_capture_on_commit_callbacks,
):
    ids = pending_alerts(django_capture_on_commit_callbacks)
    CustomerAlert.objects.filter(pk__in=ids).update(next_attempt_at=in_seconds(20))
    assert alerts_requeue().found == 0
    assert requeue_pending_alerts.apply(kwargs={"older_than": 0}).get() == 0
    call_command("retry_alerts")
    # Due a moment ago: its own retry is about to run, beat still keeps off.
    CustomerAlert.objects.filter(pk__in=ids).update(next_attempt_at=in_seconds(-5))
    assert alerts_requeue().found == 0
    assert queued["alerts"] == []

    # Overdue by more than the grace: the retry was lost (its worker died).
    overdue = RETRY_GRACE + timedelta(seconds=1)
    CustomerAlert.objects.filter(pk__in=ids).update(next_attempt_at=timezone.now() - overdue)
    assert requeue_pending_alerts.apply(kwargs={"older_than": 0}).get() == 2
    assert sorted(queued["alerts"]) == ids


def test_a_requeued_alert_is_not_requeued_by_an_immediate_second_beat(
    queued, django_capture_on_commit_callbacks,
):
    ids = pending_alerts(django_capture_on_commit_callbacks)
    before = timezone.now()
    assert requeue_pending_alerts.apply(kwargs={"older_than": 0}).get() == 2
    assert requeue_pending_alerts.apply(kwargs={"older_than": 0}).get() == 0
    call_command("retry_alerts")
    assert sorted(queued["alerts"]) == ids  # once each
    for held in CustomerAlert.objects.filter(pk__in=ids).values_list("next_attempt_at",
                                                                      flat=True):
        assert before + RETRY_GRACE <= held <= timezone.now() + RETRY_GRACE


@pytest.mark.django_db(transaction=True)
def test_beat_skips_an_alert_locked_by_a_send_in_progress(postgres, queued):
    sale = SaleFactory()
    refund = refund_create(sale_id=sale.pk).refund  # no alert asked: add one by hand
    alert = CustomerAlert.objects.create(sale=sale, refund=refund, event="refund_created",
                                         channel="email", recipient="a@example.com")
    with row_locked(CustomerAlert, alert.pk):
        assert alerts_requeue().found == 0  # skipped, not waited for
    assert alerts_requeue().found == 1
    assert queued["alerts"] == [alert.pk]


# The send task records when its retry is due.

class SnapshotEmailBackend(BaseEmailBackend):
    """A mail server down `failures` times (-1: always); notes, on every attempt, the
    alert's status, when beat may look at it again, and whether beat would take it."""

    failures = 0
    seen: list[tuple[str, object, bool]] = []

    def send_messages(self, messages):
        for message in messages:
            pk = int(message.extra_headers["X-Customer-Alert"])
            status, due = CustomerAlert.objects.values_list("status", "next_attempt_at").get(
                pk=pk)
            SnapshotEmailBackend.seen.append(
                (status, due, alerts_pending().filter(pk=pk).exists()))
        if SnapshotEmailBackend.failures:
            if SnapshotEmailBackend.failures > 0:
                SnapshotEmailBackend.failures -= 1
            raise ConnectionRefusedError("mail server down")
        mail.outbox.extend(messages)
        return len(messages)


@pytest.fixture
def snapshot_mail(settings):
    settings.EMAIL_BACKEND = "tests.alerts.test_retry_schedule.SnapshotEmailBackend"
    SnapshotEmailBackend.failures = 0
    SnapshotEmailBackend.seen = []
    yield SnapshotEmailBackend
    SnapshotEmailBackend.failures = 0


@pytest.fixture
def retries_due(monkeypatch):
    """When the send task said each retry of an alert was due (alerts.alert_retry_at,
    which the task looks up when it runs)."""
    due: list[object] = []

    def spy(*, alert_id, when):
        due.append(when)
        return alert_retry_at(alert_id=alert_id, when=when)

    monkeypatch.setattr("refunds.services.alerts.alert_retry_at", spy)
    return due


def email_alert(capture) -> CustomerAlert:
    ids = pending_alerts(capture)
    return CustomerAlert.objects.get(pk__in=ids, channel="email")


def assert_claimed_while_sent(seen, since):
    """Every attempt went out on an alert claimed in a committed step: `sending`, looked
    at again by beat only after ALERT_SEND_TIMEOUT, and never taken by beat meanwhile."""
    for status, due, beat_would_take_it in seen:
        assert status == "sending" and not beat_would_take_it
        assert since + ALERT_SEND_TIMEOUT <= due <= timezone.now() + ALERT_SEND_TIMEOUT


def test_the_send_task_records_when_its_retry_is_due_and_clears_it_once_sent(
    eager, snapshot_mail, retries_due, django_capture_on_commit_callbacks,
):
    alert = email_alert(django_capture_on_commit_callbacks)
    snapshot_mail.failures = 2
    before = timezone.now()
    assert send_customer_alert.apply(args=[alert.pk]).get() == "sent"
    assert len(snapshot_mail.seen) == 3
    assert_claimed_while_sent(snapshot_mail.seen, before)
    # Retries 0 and 1 wait 1-2 s and 1-3 s.
    assert len(retries_due) == 2
    for due in retries_due:
        assert due is not None and before < due <= timezone.now() + timedelta(seconds=3)
    alert.refresh_from_db()
    assert alert.status == "sent" and alert.attempts == 3 and alert.next_attempt_at is None
    assert len(mail.outbox) == 1


def test_between_attempts_beat_keeps_off_until_the_retry_is_overdue(
    snapshot_mail, django_capture_on_commit_callbacks,
):
    alert = email_alert(django_capture_on_commit_callbacks)
    snapshot_mail.failures = 1
    with pytest.raises(AlertDeliveryError):
        alert_send(alert_id=alert.pk)
    assert tasks._record(alert_retry_at, alert_id=alert.pk, when=in_seconds(5)) is None
    alert.refresh_from_db()
    assert alert.status == "pending" and alert.attempts == 1
    assert not alerts_pending().filter(pk=alert.pk).exists()  # its retry is coming
    CustomerAlert.objects.filter(pk=alert.pk).update(
        next_attempt_at=timezone.now() - RETRY_GRACE - timedelta(seconds=1))
    assert alerts_pending().filter(pk=alert.pk).exists()  # overdue: beat takes it


def test_the_send_task_gives_up_after_its_own_retries_and_clears_the_due_time(
    eager, snapshot_mail, retries_due, django_capture_on_commit_callbacks,
):
    alert = email_alert(django_capture_on_commit_callbacks)
    snapshot_mail.failures = -1
    before = timezone.now()
    assert send_customer_alert.apply(args=[alert.pk]).get() == "failed"
    assert len(snapshot_mail.seen) == ALERT_MAX_RETRIES + 1
    assert_claimed_while_sent(snapshot_mail.seen, before)
    assert len(retries_due) == ALERT_MAX_RETRIES and None not in retries_due
    alert.refresh_from_db()
    assert alert.status == "failed" and alert.attempts == ALERT_MAX_RETRIES + 1
    assert alert.next_attempt_at is None


# Beat and the refunds it settles again.

def test_a_refund_is_resettled_only_once_its_retry_is_overdue(
    queued, django_capture_on_commit_callbacks,
):
    refund = pending_online_refund(django_capture_on_commit_callbacks)
    refund.allocations.update(next_attempt_at=in_seconds(120))
    assert refunds_resettle() == 0
    assert resettle_pending_refunds.apply(kwargs={"older_than": 0}).get() == 0
    call_command("retry_alerts", "--refunds")
    refund.allocations.update(next_attempt_at=in_seconds(-5))  # its own retry is running
    assert refunds_resettle() == 0
    assert queued["refunds"] == []

    refund.allocations.update(next_attempt_at=timezone.now() - RETRY_GRACE - timedelta(seconds=1))
    assert resettle_pending_refunds.apply(kwargs={"older_than": 0}).get() == 1
    assert queued["refunds"] == [refund.pk]
    assert_books_balance()


def test_a_refund_with_one_allocation_still_waiting_for_its_retry_is_not_resettled(
    queued, django_capture_on_commit_callbacks,
):
    sale = SaleFactory(lines=[(2, 1000)], tax_rate="0", payments=[
        {"amount": 1200, "method": "card", "gateway": "sandbox"},
        {"amount": 800, "method": "card", "gateway": "sandbox"},
    ])
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_create(sale_id=sale.pk).refund
    first, second = refund.allocations.order_by("pk")
    RefundPayment.objects.filter(pk=first.pk).update(next_attempt_at=in_seconds(-3600))
    RefundPayment.objects.filter(pk=second.pk).update(next_attempt_at=in_seconds(60))
    assert refunds_resettle() == 0 and queued["refunds"] == []
    assert_books_balance()


def test_a_resettled_refund_is_not_resettled_by_an_immediate_second_beat(
    monkeypatch, django_capture_on_commit_callbacks,
):
    refund = pending_online_refund(django_capture_on_commit_callbacks)

    def down(pk):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(settle_refund, "delay", down)
    assert refunds_resettle() == 0
    assert refund.allocations.get().next_attempt_at is None  # not queued: released

    sent: list[int] = []
    monkeypatch.setattr(settle_refund, "delay", sent.append)  # the broker is back
    assert resettle_pending_refunds.apply(kwargs={"older_than": 0}).get() == 1
    assert resettle_pending_refunds.apply(kwargs={"older_than": 0}).get() == 0
    assert sent == [refund.pk]
    held = refund.allocations.get().next_attempt_at
    assert held is not None and held > timezone.now()
    assert_books_balance()


@pytest.mark.django_db(transaction=True)
def test_beat_skips_a_refund_locked_by_a_settlement_in_progress(postgres, queued):
    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox")
    refund = refund_create(sale_id=sale.pk).refund  # settle_refund.delay: only recorded
    queued["refunds"].clear()
    with row_locked(Refund, refund.pk):
        assert refunds_resettle() == 0
    assert refunds_resettle() == 1 and queued["refunds"] == [refund.pk]
    assert_books_balance()


# The settle task records when its retry is due.

class FlakyGateway:
    """Down `failures` times (-1: always), then refunds; notes, on every call, when the
    allocation's retry was due and whether beat would have taken the refund."""

    name = "flaky"
    failures = 0
    seen: list[tuple[object, bool]] = []

    def refund(self, payment, amount, idempotency_key):
        allocation = RefundPayment.objects.get(payment=payment)
        FlakyGateway.seen.append((
            allocation.next_attempt_at,
            refunds_unsettled().filter(pk=allocation.refund_id).exists(),
        ))
        if FlakyGateway.failures:
            if FlakyGateway.failures > 0:
                FlakyGateway.failures -= 1
            raise GatewayUnavailableError("flaky gateway down")
        return GatewayResult(reference=f"flaky-{idempotency_key}")


@pytest.fixture
def flaky_gateway(settings):
    settings.PAYMENT_GATEWAYS = {**settings.PAYMENT_GATEWAYS,
                                 "flaky": "tests.alerts.test_retry_schedule.FlakyGateway"}
    FlakyGateway.failures = 0
    FlakyGateway.seen = []
    yield FlakyGateway
    FlakyGateway.failures = 0


def test_the_settle_task_records_when_its_retry_is_due_and_clears_it_once_answered(
    eager, flaky_gateway, django_capture_on_commit_callbacks,
):
    flaky_gateway.failures = 2
    sale = SaleFactory(lines=[(1, 1000)], gateway="flaky")
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):  # settle_refund, eagerly
        refund = refund_create(sale_id=sale.pk).refund
    first, second, third = flaky_gateway.seen
    assert first == (None, True)
    # Retries 0 and 1 (factor 2) wait 1-3 s and 1-5 s: due then, beat keeps off meanwhile.
    for due, beat_would_take_it in (second, third):
        assert due is not None and before < due <= timezone.now() + timedelta(seconds=5)
        assert not beat_would_take_it
    allocation = refund.allocations.get()
    assert allocation.status == "succeeded" and allocation.attempts == 3
    assert allocation.next_attempt_at is None
    assert Refund.objects.get(pk=refund.pk).status == "succeeded"
    assert_books_balance()


def test_the_settle_task_gives_up_after_its_own_retries_and_leaves_it_to_beat(
    eager, flaky_gateway, django_capture_on_commit_callbacks,
):
    flaky_gateway.failures = -1
    sale = SaleFactory(lines=[(1, 1000)], gateway="flaky")
    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_create(sale_id=sale.pk).refund
    assert len(flaky_gateway.seen) == SETTLE_MAX_RETRIES + 1
    assert all(due is not None and not beat for due, beat in flaky_gateway.seen[1:])
    allocation = refund.allocations.get()
    assert allocation.status == "pending" and allocation.attempts == SETTLE_MAX_RETRIES + 1
    assert allocation.next_attempt_at is None  # no retry coming: beat's to take
    assert list(refunds_unsettled()) == [Refund.objects.get(pk=refund.pk)]
    assert_books_balance()


# Each allocation has an idempotency key of its own.

def test_the_gateway_gets_a_key_of_its_own_for_every_allocation(
    eager, monkeypatch, django_capture_on_commit_callbacks,
):
    keys: list[str] = []
    refund_with = SandboxGateway.refund

    def spy(self, payment, amount, idempotency_key):
        keys.append(idempotency_key)
        return refund_with(self, payment, amount, idempotency_key)

    monkeypatch.setattr(SandboxGateway, "refund", spy)
    two_cards = SaleFactory(lines=[(2, 1000)], tax_rate="0", payments=[
        {"amount": 1200, "method": "card", "gateway": "sandbox"},
        {"amount": 800, "method": "card", "gateway": "sandbox"},
    ])
    one_card = SaleFactory(lines=[(2, 1000)], tax_rate="0", gateway="sandbox")
    with django_capture_on_commit_callbacks(execute=True):
        first = refund_create(sale_id=two_cards.pk).refund
        second = refund_create(sale_id=one_card.pk, items={
            one_card.lines.get().pk: 1}).refund
        third = refund_create(sale_id=one_card.pk).refund  # the same payment again

    allocations = list(RefundPayment.objects.filter(
        refund__in=[first, second, third]).order_by("refund_id", "pk"))
    assert [a.refund_id for a in allocations] == [first.pk, first.pk, second.pk, third.pk]
    assert keys == [a.idempotency_key for a in allocations]
    assert len(set(keys)) == 4
    for allocation, key in zip(allocations, keys, strict=True):
        assert re.fullmatch(r"refund-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", key)
        assert uuid.UUID(key.removeprefix("refund-")) == allocation.gateway_key
        assert allocation.status == "succeeded"
        assert SandboxGateway.ledger(key)["calls"] == 1
    assert Payment.objects.get(sale=one_card).refunded_amount == 2000
    assert_books_balance()


class row_locked:
    """Hold `select_for_update()` on one row from another connection (a task at work)."""

    def __init__(self, model, pk):
        self.model, self.pk = model, pk
        self.locked, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self):
        try:
            with transaction.atomic():
                self.model.objects.select_for_update().get(pk=self.pk)
                self.locked.set()
                self.release.wait(10)  # a beat that waits instead of skipping fails, late
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.locked.wait(10), "the other connection never got the lock"
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(20)
