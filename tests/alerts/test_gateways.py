"""The sandbox gateway honours idempotency keys; settling never moves money twice; a
refused refund leaves every counter as it was."""

from __future__ import annotations

import pytest

from backoffice.errors import DomainError
from refunds.gateways import (
    GatewayError,
    GatewayResult,
    GatewayUnavailableError,
    SandboxGateway,
)
from refunds.models import RefundPayment
from refunds.services import RefundOptions, refund_create, sale_cancel
from refunds.services.settle import (
    refund_settle,
    refund_settle_offline,
    refunds_needing_attention,
)
from sales.models import Payment
from tests.books import assert_books_balance
from tests.factories import CustomerFactory, ProductFactory, SaleFactory, UserFactory

from .counters import counters

pytestmark = pytest.mark.django_db


def sandbox_payment(reference=""):
    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox")
    payment = Payment.objects.get(sale=sale)
    payment.gateway_reference = reference
    return payment


def test_the_same_key_moves_money_once_and_gives_the_same_answer():
    gateway, payment = SandboxGateway(), sandbox_payment()
    first = gateway.refund(payment, 500, "key-1")
    second = gateway.refund(payment, 500, "key-1")
    assert first.reference == second.reference
    ledger = SandboxGateway.ledger("key-1")
    assert ledger["calls"] == 2 and ledger["amount"] == 500 and ledger["outcome"] == "refunded"
    assert gateway.refund(payment, 500, "key-2").reference != first.reference


def test_the_same_key_with_another_amount_is_refused():
    gateway, payment = SandboxGateway(), sandbox_payment()
    gateway.refund(payment, 500, "key-3")
    with pytest.raises(GatewayError, match="was used for 500"):
        gateway.refund(payment, 400, "key-3")


def test_failure_modes(settings):
    gateway = SandboxGateway()
    with pytest.raises(GatewayError):
        gateway.refund(sandbox_payment(), settings.SANDBOX_FAIL_AMOUNT, "k-amount")
    with pytest.raises(GatewayError):
        gateway.refund(sandbox_payment("fail"), 500, "k-fail")
    with pytest.raises(GatewayError):  # a decline is remembered too
        gateway.refund(sandbox_payment(), 500, "k-fail")
    with pytest.raises(GatewayUnavailableError):
        gateway.refund(sandbox_payment("unavailable"), 500, "k-down")
    assert SandboxGateway.ledger("k-down") is None  # nothing moved
    settings.SANDBOX_MODE = "fail"
    with pytest.raises(GatewayError):
        gateway.refund(sandbox_payment(), 500, "k-mode")


def test_timeout_once_moves_the_money_then_answers_the_retry():
    gateway, payment = SandboxGateway(), sandbox_payment("timeout-once")
    with pytest.raises(GatewayUnavailableError):
        gateway.refund(payment, 500, "k-timeout")
    assert SandboxGateway.ledger("k-timeout")["outcome"] == "refunded"  # it did move
    assert gateway.refund(payment, 500, "k-timeout").reference.startswith("sbx_re_")


def test_a_timeout_then_a_retry_settles_once(django_capture_on_commit_callbacks):
    sale = SaleFactory(lines=[(2, 1000)], gateway="sandbox")
    Payment.objects.filter(sale=sale).update(gateway_reference="timeout-once")
    with django_capture_on_commit_callbacks(execute=False):  # settle by hand below
        refund = refund_create(sale_id=sale.pk).refund
    with pytest.raises(GatewayUnavailableError):
        refund_settle(refund_id=refund.pk)
    allocation = RefundPayment.objects.get(refund=refund)
    assert allocation.status == "pending" and allocation.attempts == 1
    assert "timed out" in allocation.last_error

    assert refund_settle(refund_id=refund.pk).status == "succeeded"
    assert refund_settle(refund_id=refund.pk).status == "succeeded"  # a third run: nothing
    allocation.refresh_from_db()
    assert allocation.attempts == 2 and allocation.status == "succeeded"
    assert SandboxGateway.ledger(allocation.idempotency_key)["calls"] == 2
    assert Payment.objects.get(sale=sale).refunded_amount == refund.total
    assert_books_balance()


def test_an_outage_keeps_the_refund_pending_without_rolling_back(
    django_capture_on_commit_callbacks,
):
    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox")
    Payment.objects.filter(sale=sale).update(gateway_reference="unavailable")
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_create(sale_id=sale.pk).refund
    after_refund = counters(sale)
    with pytest.raises(GatewayUnavailableError):
        refund_settle(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == "pending" and counters(sale) == after_refund
    assert_books_balance()


@pytest.mark.parametrize("how", ["partial", "full", "cancel", "two_payments"])
def test_a_refused_refund_leaves_every_counter_as_before(how, django_capture_on_commit_callbacks):
    product = ProductFactory(stock=10)
    if how == "two_payments":
        sale = SaleFactory(lines=[(2, 1000)], product=product, tax_rate="0", payments=[
            {"amount": 1500, "method": "card", "gateway": "sandbox"},
            {"amount": 500, "method": "cash"},
        ])
    else:
        sale = SaleFactory(lines=[(3, 1000), (2, 750)], product=product, gateway="sandbox",
                           shipping_fee=499, processing_fee=150)
    Payment.objects.filter(sale=sale, gateway="sandbox").update(gateway_reference="fail")
    before = counters(sale)
    with django_capture_on_commit_callbacks(execute=False):
        if how == "cancel":
            refund = sale_cancel(sale_id=sale.pk, reason="customer").refund
        elif how == "partial":
            line = sale.lines.order_by("pk").first()
            refund = refund_create(sale_id=sale.pk, items={line.pk: 2}).refund
        else:
            refund = refund_create(sale_id=sale.pk, options=RefundOptions()).refund
    assert counters(sale) != before
    assert refund_settle(refund_id=refund.pk).status == "failed"
    assert counters(sale) == before
    refund.refresh_from_db()
    assert refund.failure_reason
    assert_books_balance()


def _two_card_sale():
    sale = SaleFactory(lines=[(2, 1000)], tax_rate="0", payments=[
        {"amount": 1200, "method": "card", "gateway": "sandbox"},
        {"amount": 800, "method": "card", "gateway": "sandbox"},
    ], customer=CustomerFactory())
    first, second = Payment.objects.filter(sale=sale).order_by("pk")
    second.gateway_reference = "fail"
    second.save(update_fields=["gateway_reference"])
    return sale, first, second


def test_a_refund_refused_on_one_payment_after_another_paid_back_needs_attention(
    django_capture_on_commit_callbacks, mailoutbox,
):
    sale, first, second = _two_card_sale()
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_create(
            sale_id=sale.pk, options=RefundOptions(alert_customer=True)).refund
    after_refund = counters(sale)
    settled = refund_settle(refund_id=refund.pk)

    # £12 went back on the first card and can't be taken back; £8 is owed: nothing is
    # rolled back, nobody can refund those units or that money again, nobody is told yet.
    assert settled.status == "pending"
    assert settled.failure_reason.startswith("Needs attention: £8.00 was refused")
    assert [a.status for a in settled.allocations.order_by("pk")] == ["succeeded", "failed"]
    assert counters(sale) == after_refund
    assert list(refunds_needing_attention()) == [settled]
    assert mailoutbox == []
    assert refund_settle(refund_id=refund.pk).status == "pending"  # beat/retry: no change
    assert SandboxGateway.ledger(first_allocation(refund).idempotency_key)["calls"] == 1

    staff = UserFactory(username="supervisor-1")
    with django_capture_on_commit_callbacks(execute=True):
        done = refund_settle_offline(refund_id=refund.pk, actor=staff, note="cash at till 2")
    assert done.status == "succeeded" and done.failure_reason == ""
    second_part = done.allocations.order_by("pk").last()
    assert second_part.status == "succeeded" and not second_part.online
    assert second_part.gateway_reference == "offline by supervisor-1: cash at till 2"
    assert counters(sale) == after_refund  # the books already held the whole refund
    assert len(mailoutbox) == 1  # told once, now that everything went back
    assert list(refunds_needing_attention()) == []
    with pytest.raises(DomainError) as exc:
        refund_settle_offline(refund_id=refund.pk, actor=staff)
    assert exc.value.code == "refund_not_awaiting_action"
    assert_books_balance()


def test_a_refund_refused_on_its_first_payment_sends_nothing_more_and_fails_whole(
    django_capture_on_commit_callbacks,
):
    sale, first, second = _two_card_sale()
    Payment.objects.filter(pk=first.pk).update(gateway_reference="fail")
    Payment.objects.filter(pk=second.pk).update(gateway_reference="")
    before = counters(sale)
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_create(sale_id=sale.pk).refund
    assert refund_settle(refund_id=refund.pk).status == "failed"
    assert counters(sale) == before
    never_asked = refund.allocations.order_by("pk").last()
    assert SandboxGateway.ledger(never_asked.idempotency_key) is None
    assert_books_balance()


def first_allocation(refund):
    return refund.allocations.order_by("pk").first()


class RecordingGateway:
    """Notes, on each call, whether a database transaction was open around it."""

    name = "recording"
    calls: list[tuple[int, bool]] = []

    def refund(self, payment, amount, idempotency_key):
        from django.db import connection

        RecordingGateway.calls.append((amount, connection.in_atomic_block))
        return GatewayResult(reference=f"rec-{idempotency_key}")


@pytest.mark.django_db(transaction=True)  # no test-wide transaction around the call
def test_the_gateway_is_called_outside_any_database_transaction(settings):
    settings.PAYMENT_GATEWAYS = {**settings.PAYMENT_GATEWAYS,
                                 "recording": "tests.alerts.test_gateways.RecordingGateway"}
    RecordingGateway.calls = []
    sale = SaleFactory(lines=[(2, 1000)], gateway="recording")
    refund = refund_create(sale_id=sale.pk).refund  # eager: settled after the commit
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert RecordingGateway.calls == [(refund.total, False)]
    assert_books_balance()
