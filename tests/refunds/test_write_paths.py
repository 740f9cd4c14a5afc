"""PostgreSQL writes a refund in one statement (refunds/services/write_pg.py); the ORM
path writes the same rows on SQLite. The same refunds written both ways on PostgreSQL
give the same rows and the same counters, column for column."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from refunds.models import CustomerAlert, Refund, RefundLine, RefundPayment
from refunds.services import RefundOptions, refund_create, sale_cancel
from refunds.services import ledger as refund_module
from sales.models import Customer, Payment, Product, Sale, SaleCancellation, SaleLine
from sales.services import payment_record
from tests.factories import CustomerFactory, ProductFactory, SaleFactory

VOLATILE = {"id", "sale", "refund", "created_at", "settled_at", "updated_at", "sent_at",
            "idempotency_key", "request_hash", "sale_line", "payment", "number",
            "external_id", "paid_at", "cancelled_at", "product", "sku", "customer",
            "recipient"}


def _row(obj) -> dict:
    return {k: v for k, v in model_to_dict(obj).items() if k not in VOLATILE}


def _snapshot(sale: Sale) -> dict:
    refunds = list(Refund.objects.filter(sale=sale).order_by("pk"))
    return {
        "sale": _row(Sale.objects.get(pk=sale.pk)),
        "lines": [_row(x) for x in SaleLine.objects.filter(sale=sale).order_by("pk")],
        "payments": [_row(x) for x in Payment.objects.filter(sale=sale).order_by("pk")],
        "refunds": [_row(r) for r in refunds],
        "refund_lines": [_row(x) for x in RefundLine.objects.filter(
            refund__in=refunds).order_by("pk")],
        "allocations": [_row(x) for x in RefundPayment.objects.filter(
            refund__in=refunds).order_by("pk")],
        "alerts": [_row(x) for x in CustomerAlert.objects.filter(sale=sale).order_by("pk")],
        "cancellation": [_row(x) for x in SaleCancellation.objects.filter(sale=sale)],
        "balance": Customer.objects.get(pk=sale.customer_id).store_balance,
        "stock": sorted(Product.objects.filter(
            pk__in=SaleLine.objects.filter(sale=sale).values("product_id")
        ).values_list("stock", flat=True)),
    }


def _make_sale():
    """Two lines of one product and one without, fees, a card and a cash payment."""
    product = ProductFactory(stock=50)
    sale = SaleFactory(
        lines=[{"product_id": product.pk, "quantity": 3, "unit_price": 999, "discount": 7,
                "tax_rate": "0.20", "description": "Mug"},
               {"product_id": product.pk, "quantity": 2, "unit_price": 1500,
                "tax_rate": "0.175", "description": "Plate"},
               {"quantity": 1, "unit_price": 250, "tax_rate": "0", "description": "Card"}],
        paid=False, payments=[{"method": "card", "amount": 4000}],
        shipping_fee=499, processing_fee=150, customer=CustomerFactory(),
    )
    payment_record(sale_id=sale.pk, amount=sale.total - sale.amount_paid, method="cash")
    sale.refresh_from_db()
    return sale


SCENARIOS = {
    "partial_then_rest_with_alerts": lambda sale, lines: [
        refund_create(sale_id=sale.pk, items={lines[0].pk: 2, lines[1].pk: 1},
                      options=RefundOptions(alert_customer=True, reason="damaged")),
        refund_create(sale_id=sale.pk, options=RefundOptions(alert_customer=True)),
    ],
    "balance_refund_no_restock": lambda sale, lines: [
        refund_create(sale_id=sale.pk, items={lines[2].pk: 1},
                      options=RefundOptions(type="balance_refund", restock=False)),
    ],
    "idempotent_replay": lambda sale, lines: [
        refund_create(sale_id=sale.pk, items={lines[0].pk: 1}, idempotency_key=f"k-{sale.pk}"),
        refund_create(sale_id=sale.pk, items={lines[0].pk: 1}, idempotency_key=f"k-{sale.pk}"),
    ],
    "cancel_with_alert": lambda sale, lines: [
        sale_cancel(sale_id=sale.pk, reason="customer", alert_customer=True),
    ],
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_one_statement_and_the_orm_write_the_same_rows(postgres, monkeypatch, scenario):
    snapshots = []
    for one_statement in (True, False):
        monkeypatch.setattr(refund_module, "WRITE_IN_ONE_STATEMENT", one_statement)
        sale = _make_sale()
        lines = list(sale.lines.order_by("pk"))
        SCENARIOS[scenario](sale, lines)
        snapshots.append(_snapshot(sale))
    one_statement, orm = snapshots
    assert one_statement == orm
    assert one_statement["refunds"], "the scenario wrote no refund"
    if scenario.startswith("cancel"):
        assert one_statement["cancellation"] == [
            {"reason": "customer", "note": "", "cancelled_by": None, "source": "admin",
             "restock": True, "alert": True}]


def test_the_one_statement_path_is_what_postgresql_runs(postgres, django_assert_num_queries):
    sale = _make_sale()
    line = sale.lines.order_by("pk").first()
    # BEGIN, the sale with its customer, lines and payments (locked, one statement), the
    # one write, COMMIT
    with django_assert_num_queries(4):
        refund_create(sale_id=sale.pk, items={line.pk: 1},
                      options=RefundOptions(alert_customer=True))


def test_an_over_refund_is_still_refused_by_the_database_in_one_statement(postgres):
    from django.db import IntegrityError, transaction

    from refunds.services.plan import plan_refund as _plan
    from refunds.services.refund import refund_write
    from sales.selectors import sale_lock

    sale = _make_sale()
    line = sale.lines.order_by("pk").first()
    with pytest.raises(IntegrityError), transaction.atomic():
        locked = sale_lock(sale.pk)
        plan = _plan(locked, items={line.pk: 3}, options=RefundOptions(), splits=None,
                     expected_refunded_amount=None)
        SaleLine.objects.filter(pk=line.pk).update(refunded_quantity=1)  # behind its back
        refund_write(plan, refund_type="refund", actor=None, source="command")
    line.refresh_from_db()
    assert line.refunded_quantity == 0


@pytest.mark.parametrize("paid", [True, False], ids=["paid", "unpaid"])
def test_a_cancel_writes_its_row_in_the_one_statement(postgres, django_assert_num_queries,
                                                      paid):
    sale = _make_sale() if paid else SaleFactory(lines=[(1, 500)], paid=False)
    # BEGIN, the sale with its customer and cancellation, lines and payments (locked, one
    # statement), the one write (refund, lines, allocations, counters, status and the
    # cancellation row), COMMIT
    with django_assert_num_queries(4):
        result = sale_cancel(sale_id=sale.pk, reason="fraud", restock=False)
    assert SaleCancellation.objects.filter(sale=sale, reason="fraud", restock=False).exists()
    assert (result.refund is not None) == paid
