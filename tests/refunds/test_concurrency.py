"""Races on PostgreSQL: threads on separate connections against the same sale."""

import threading

import pytest
from django.db import connection, connections

from backoffice.errors import DomainError
from refunds.models import Refund, RefundLine
from refunds.services import refund_create, sale_cancel
from sales.models import Payment, Sale, SaleLine
from tests.books import assert_books_balance
from tests.factories import SaleFactory


def run_threads(n, target):
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        try:
            barrier.wait()
            results[i] = ("ok", target(i))
        except DomainError as exc:
            results[i] = ("error", exc.code)
        except Exception as exc:  # pragma: no cover - shown in the assertion
            results[i] = ("crash", repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.django_db(transaction=True)
def test_twenty_racing_refunds_of_the_last_five_units(postgres):
    sale = SaleFactory(lines=[(8, 1000)])
    line = sale.lines.get()
    refund_create(sale_id=sale.pk, items={line.pk: 3})  # 5 left
    connection.close()

    results = run_threads(
        20, lambda i: refund_create(sale_id=sale.pk, items={line.pk: 1}).refund.pk
    )

    outcomes = [r[0] for r in results]
    assert outcomes.count("ok") == 5, results
    assert [r[1] for r in results if r[0] != "ok"] == ["refund_quantity_exceeded"] * 15
    line.refresh_from_db()
    assert line.refunded_quantity == 8
    lines = RefundLine.objects.filter(sale_line=line)
    assert line.refunded_quantity == sum(rl.quantity for rl in lines)
    assert line.refunded_amount == sum(rl.amount for rl in lines) == line.net_amount
    payment = Payment.objects.get(sale=sale)
    assert payment.refunded_amount == sum(Refund.objects.filter(sale=sale).values_list(
        "total", flat=True))
    assert Sale.objects.get(pk=sale.pk).status == "refunded"
    assert_books_balance()


@pytest.mark.django_db(transaction=True)
def test_ten_threads_replaying_one_idempotency_key_make_one_refund(postgres):
    sale = SaleFactory(lines=[(5, 1000)])
    line = sale.lines.get()
    connection.close()

    results = run_threads(10, lambda i: refund_create(
        sale_id=sale.pk, items={line.pk: 1}, idempotency_key="replay-1").refund.pk)

    assert {r[0] for r in results} == {"ok"}, results
    assert len({r[1] for r in results}) == 1
    assert Refund.objects.filter(sale=sale).count() == 1
    assert SaleLine.objects.get(pk=line.pk).refunded_quantity == 1
    assert_books_balance()


@pytest.mark.django_db(transaction=True)
def test_cancel_racing_refunds_never_both_win(postgres):
    sale = SaleFactory(lines=[(4, 1000)])
    line = sale.lines.get()
    connection.close()

    def target(i):
        if i % 2:
            return sale_cancel(sale_id=sale.pk, reason="customer").sale.pk
        return refund_create(sale_id=sale.pk, items={line.pk: 1}).refund.pk

    results = run_threads(8, target)
    assert not [r for r in results if r[0] == "crash"], results
    sale.refresh_from_db()
    line.refresh_from_db()
    refunds = Refund.objects.filter(sale=sale)
    if sale.status == "cancelled":
        # The cancel came first: it gave everything back, every refund after it was refused.
        assert refunds.count() == 1 and refunds.get().type == "cancellation"
    else:
        assert not refunds.filter(type="cancellation").exists()
    assert sale.amount_refunded == sum(r.total for r in refunds) <= sale.amount_paid
    assert line.refunded_quantity <= line.quantity
    assert_books_balance()
