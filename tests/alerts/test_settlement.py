"""Settlement always finishes: a refund whose gateway answers were saved but which was
never finalised (its worker died in between) is found by beat and finished as the first
run would have; "needs attention" only when some money really went back."""

from __future__ import annotations

import pytest
from django.utils import timezone

from backoffice.errors import DomainError
from refunds.gateways import SandboxGateway
from refunds.models import AllocationStatus, Refund, RefundPayment
from refunds.services import RefundOptions, refund_create
from refunds.services.settle import (
    refund_settle_offline,
    refunds_needing_attention,
    refunds_resettle,
    refunds_unsettled,
)
from refunds.tasks import settle_refund
from sales.models import Payment
from tests.books import assert_books_balance, books_differences
from tests.factories import CustomerFactory, SaleFactory

from .counters import counters

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(settle_refund, "delay", sent.append)
    return sent


def unsettled_refund(capture, sale) -> Refund:
    with capture(execute=False):
        return refund_create(sale_id=sale.pk, options=RefundOptions(alert_customer=True)).refund


def answer(allocation: RefundPayment, status: str) -> None:
    """What refund_settle saves for one allocation before it finalises (a worker killed
    right after)."""
    RefundPayment.objects.filter(pk=allocation.pk).update(
        status=status, settled_at=timezone.now(), next_attempt_at=None, attempts=1)


def two_card_sale(*, declined: str):
    sale = SaleFactory(lines=[(2, 1000)], tax_rate="0", customer=CustomerFactory(), payments=[
        {"amount": 1200, "method": "card", "gateway": "sandbox"},
        {"amount": 800, "method": "card", "gateway": "sandbox"},
    ])
    payments = list(Payment.objects.filter(sale=sale).order_by("pk"))
    Payment.objects.filter(pk=payments[0 if declined == "first" else 1].pk).update(
        gateway_reference="fail")
    return sale


def test_an_answered_refund_never_finalised_is_found_and_claimed_once(
    queued, django_capture_on_commit_callbacks,
):
    refund = unsettled_refund(django_capture_on_commit_callbacks,
                              SaleFactory(lines=[(1, 1000)], gateway="sandbox"))
    answer(refund.allocations.get(), AllocationStatus.SUCCEEDED)

    assert list(refunds_unsettled()) == [refund]
    assert refunds_resettle() == 1
    assert refunds_resettle() == 0  # claimed: a second beat run right after queues nothing
    assert queued == [refund.pk]


def test_a_paid_answer_never_finalised_succeeds_without_asking_again(
    eager, django_capture_on_commit_callbacks, mailoutbox,
):
    refund = unsettled_refund(django_capture_on_commit_callbacks,
                              SaleFactory(lines=[(1, 1000)], gateway="sandbox"))
    answer(refund.allocations.get(), AllocationStatus.SUCCEEDED)

    with django_capture_on_commit_callbacks(execute=True):
        assert refunds_resettle() == 1
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert SandboxGateway.ledger(refund.allocations.get().idempotency_key) is None  # not asked
    assert len(mailoutbox) == 1
    assert list(refunds_unsettled()) == []
    assert_books_balance()


def test_a_declined_answer_never_finalised_is_not_needs_attention_and_is_released(
    eager, django_capture_on_commit_callbacks,
):
    sale = SaleFactory(lines=[(2, 1000)], gateway="sandbox")
    before = counters(sale)
    refund = unsettled_refund(django_capture_on_commit_callbacks, sale)
    answer(refund.allocations.get(), AllocationStatus.FAILED)

    assert list(refunds_needing_attention()) == []
    with pytest.raises(DomainError) as exc:  # "record offline" would pay a refused refund
        refund_settle_offline(refund_id=refund.pk)
    assert exc.value.code == "refund_not_awaiting_action"
    with django_capture_on_commit_callbacks(execute=True):
        assert refunds_resettle() == 1
    refund.refresh_from_db()
    assert refund.status == "failed"
    assert counters(sale) == before
    assert_books_balance()


def test_a_refusal_first_then_death_asks_no_further_payment(
    eager, django_capture_on_commit_callbacks,
):
    sale = two_card_sale(declined="first")
    before = counters(sale)
    refund = unsettled_refund(django_capture_on_commit_callbacks, sale)
    first, second = refund.allocations.order_by("pk")
    answer(first, AllocationStatus.FAILED)  # the second was never asked

    with django_capture_on_commit_callbacks(execute=True):
        assert refunds_resettle() == 1
    refund.refresh_from_db()
    assert refund.status == "failed"
    assert SandboxGateway.ledger(second.idempotency_key) is None  # as the first run would
    assert counters(sale) == before
    assert_books_balance()


def test_money_back_on_one_payment_then_refused_on_the_other_needs_attention(
    eager, django_capture_on_commit_callbacks,
):
    sale = two_card_sale(declined="second")
    refund = unsettled_refund(django_capture_on_commit_callbacks, sale)
    first, second = refund.allocations.order_by("pk")
    answer(first, AllocationStatus.SUCCEEDED)
    assert list(refunds_needing_attention()) == []  # the second is still to be asked

    with django_capture_on_commit_callbacks(execute=True):
        assert refunds_resettle() == 1
    assert list(refunds_needing_attention()) == [refund]
    assert list(refunds_unsettled()) == []  # final until staff act
    assert_books_balance()


def test_the_books_check_reports_a_counter_that_drifted(eager, django_capture_on_commit_callbacks):
    sale = SaleFactory(lines=[(2, 1000)])
    with django_capture_on_commit_callbacks(execute=True):
        refund_create(sale_id=sale.pk, items={sale.lines.get().pk: 1})
    assert books_differences() == []
    line = sale.lines.get()
    type(line).objects.filter(pk=line.pk).update(refunded_quantity=2)
    Payment.objects.filter(sale=sale).update(refunded_amount=1)
    problems = books_differences(sale_ids=[sale.pk])
    assert len(problems) == 2
    assert problems[0] == (f"saleline={line.pk} sale={sale.pk} field=refunded_quantity "
                           "stored=2 ledger=1")
    with pytest.raises(AssertionError):
        assert_books_balance()
