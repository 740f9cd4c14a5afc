"""The ledger (refunds/services/ledger.py): what a refund moves, computed from its plan or
from its stored rows, reversible, and written the same way on both write paths."""

from __future__ import annotations

import pytest
from django.db import transaction

from refunds.models import Refund
from refunds.services import (
    Effect,
    RefundOptions,
    effect_of_plan,
    effect_of_refund,
    ledger_write,
    plan_refund,
    refund_create,
    refunds_bulk_import,
    sale_cancel,
)
from refunds.services import ledger as ledger_module
from refunds.services.cancel import sale_cancel_preview
from sales.models import Customer, Payment, Product, Sale, SaleCancellation, SaleLine
from sales.selectors import sale_lock, sale_snapshot
from sales.services import payment_record
from tests.factories import CustomerFactory, ProductFactory, SaleFactory

pytestmark = pytest.mark.django_db

CANCEL_FIELDS = ("cancelled_at", "reason", "note", "cancelled_by_id", "source", "restock",
                 "alert")


@pytest.fixture(params=[True, False], ids=["one_statement", "orm"])
def write_path(request, monkeypatch):
    """`one_statement`: PostgreSQL's single statement (skipped, or failed in CI, on
    SQLite); `orm`: the portable path, on whichever database the suite runs."""
    if request.param:
        request.getfixturevalue("postgres")
    monkeypatch.setattr(ledger_module, "WRITE_IN_ONE_STATEMENT", request.param)
    return request.param


def _sale() -> Sale:
    """Three lines of one product; fees; a card and a cash payment."""
    sale = SaleFactory(lines=[(3, 999), (2, 1500), (1, 250)], product=ProductFactory(stock=40),
                       paid=False, payments=[{"method": "card", "amount": 4000}],
                       shipping_fee=499, processing_fee=150, customer=CustomerFactory())
    payment_record(sale_id=sale.pk, amount=sale.total - sale.amount_paid, method="cash")
    sale.refresh_from_db()
    return sale


def _books(sale: Sale) -> dict:
    """Every counter a refund of this sale can move, read from the database."""
    row = Sale.objects.get(pk=sale.pk)
    lines = SaleLine.objects.filter(sale=sale).order_by("pk")
    return {
        "sale": {f: getattr(row, f) for f in (
            "amount_refunded", "refunded_units", "refunded_processing_fee",
            "refunded_reseller_fee", "refunded_shipping_fee", "status")},
        "cancellation": list(SaleCancellation.objects.filter(sale=sale)
                             .values_list(*CANCEL_FIELDS)),
        "lines": list(lines.values_list("refunded_quantity", "refunded_amount",
                                        "refunded_tax")),
        "payments": list(Payment.objects.filter(sale=sale).order_by("pk")
                         .values_list("refunded_amount", flat=True)),
        "stock": list(Product.objects.filter(pk__in=lines.values("product_id"))
                      .order_by("pk").values_list("stock", flat=True)),
        "balance": Customer.objects.get(pk=sale.customer_id).store_balance,
    }


# -- the value --------------------------------------------------------------------------


def test_effects_add_subtract_and_reverse_to_nothing():
    a = Effect(lines={1: (2, 200, 40)}, payments={7: (240,)}, stock={3: (2,)},
               sales={9: (240, 2, 0, 0, 0)}, cancelled={9: 1})
    b = Effect(lines={1: (1, 100, 20), 2: (1, 50, 0)}, payments={7: (170,)},
               sales={9: (170, 2, 0, 0, 0)})
    assert (a + b) - b == a
    assert a + a.reversed() == Effect()
    assert not Effect() and a
    assert (b - a).lines == {1: (-1, -100, -20), 2: (1, 50, 0)}
    assert (b - a).stock == {3: (-2,)}
    assert (b - a).cancelled == {9: -1}


# -- from a plan, from the stored rows ----------------------------------------------------


@pytest.mark.parametrize("options", [
    RefundOptions(alert_customer=True),
    RefundOptions(restock=False, refund_shipping=True),
    RefundOptions(type="balance_refund"),
], ids=["full", "partial_no_restock", "balance"])
def test_the_effect_of_a_plan_is_the_effect_of_the_refund_it_writes(options):
    sale = _sale()
    lines = list(sale.lines.order_by("pk"))
    items = None if options.alert_customer else {lines[0].pk: 2, lines[2].pk: 1}
    planned = effect_of_plan(plan_refund(sale_snapshot(sale.pk), items=items, options=options,
                                         splits=None, expected_refunded_amount=None))
    refund = refund_create(sale_id=sale.pk, items=items, options=options).refund
    stored = effect_of_refund(Refund.objects.get(pk=refund.pk), sale_snapshot(sale.pk))
    assert planned == stored
    assert planned.lines and planned.payments and planned.sales
    assert bool(planned.stock) == options.restock
    assert bool(planned.store_credit) == (options.type == "balance_refund")


def test_the_effect_of_a_cancel_plan_is_the_effect_of_its_cancellation():
    sale = _sale()
    plan = sale_cancel_preview(sale_id=sale.pk, reason="customer")
    assert plan is not None
    refund = sale_cancel(sale_id=sale.pk, reason="customer").refund
    assert refund is not None
    stored = effect_of_refund(refund, sale_snapshot(sale.pk))
    assert effect_of_plan(plan, cancels=True) == stored
    assert stored.cancelled == {sale.pk: 1}


# -- reversed: every counter as before ---------------------------------------------------


@pytest.mark.parametrize("options", [
    RefundOptions(), RefundOptions(type="balance_refund"),
    RefundOptions(restock=False, refund_processing_fee=True),
], ids=["refund", "balance", "partial_fee"])
def test_the_reversed_effect_leaves_every_counter_as_before(write_path, options):
    sale = _sale()
    line = sale.lines.order_by("pk").first()
    items = {line.pk: 2} if options.refund_processing_fee else None
    before = _books(sale)
    with transaction.atomic():
        locked = sale_lock(sale.pk)
        effect = effect_of_plan(plan_refund(locked, items=items, options=options, splits=None,
                                            expected_refunded_amount=None))
        effect.apply([locked])
        ledger_write(effect, {sale.pk: locked.sale})
    moved = _books(sale)
    assert moved != before
    with transaction.atomic():
        locked = sale_lock(sale.pk)
        back = effect.reversed()
        back.apply([locked])
        assert locked.sale.status == before["sale"]["status"]
        ledger_write(back, {sale.pk: locked.sale})
    assert _books(sale) == before


def test_a_cancellation_reversed_deletes_its_row(write_path):
    sale = _sale()
    before = _books(sale)
    refund = sale_cancel(sale_id=sale.pk, reason="fraud", note="odd", restock=False,
                         alert_customer=True).refund
    assert refund is not None
    cancelled = _books(sale)
    assert cancelled["sale"]["status"] == "cancelled"
    [row] = cancelled["cancellation"]
    assert dict(zip(CANCEL_FIELDS, row, strict=True)) | {"cancelled_at": None} == {
        "cancelled_at": None, "reason": "fraud", "note": "odd", "cancelled_by_id": None,
        "source": "admin", "restock": False, "alert": True}
    assert row[0] is not None
    with transaction.atomic():
        locked = sale_lock(sale.pk)
        back = effect_of_refund(refund, locked).reversed()
        back.apply([locked])
        ledger_write(back, {sale.pk: locked.sale})
    assert _books(sale) == before


# -- a bulk replace moves counters by the difference -----------------------------------


def test_a_bulk_replace_moves_counters_by_exactly_the_difference(write_path):
    sale = _sale()
    lines = list(sale.lines.order_by("pk"))

    def record(items):
        return [{"id": "r-1", "sale_id": sale.pk, "line_items": [
            {"item_id": pk, "quantity": q} for pk, q in items.items()]}]

    refunds_bulk_import(records=record({lines[0].pk: 2}), import_source="ledger")
    old = Refund.objects.get(import_source="ledger", external_id="r-1")
    first = _books(sale)
    refunds_bulk_import(records=record({lines[0].pk: 1, lines[1].pk: 1}),
                        import_source="ledger")
    new = Refund.objects.get(import_source="ledger", external_id="r-1")
    assert new.pk != old.pk
    second = _books(sale)
    diff = effect_of_refund(new, sale_snapshot(sale.pk)) - effect_of_refund(
        old, sale_snapshot(sale.pk))
    assert diff.lines and diff.payments
    for i, line in enumerate(lines):
        d = diff.lines.get(line.pk, (0, 0, 0))
        assert second["lines"][i] == tuple(x + y for x, y in zip(first["lines"][i], d,
                                                                  strict=True))
    payments = list(Payment.objects.filter(sale=sale).order_by("pk"))
    for i, p in enumerate(payments):
        assert second["payments"][i] == first["payments"][i] + diff.payments.get(p.pk, (0,))[0]
    (product_id,) = diff.stock or {lines[0].product_id: (0,)}
    assert second["stock"] == [first["stock"][0] + diff.stock.get(product_id, (0,))[0]]
    sale_diff = diff.sales.get(sale.pk, (0,) * 5)
    for f, d in zip(("amount_refunded", "refunded_units", "refunded_processing_fee",
                     "refunded_reseller_fee", "refunded_shipping_fee"), sale_diff, strict=True):
        assert second["sale"][f] == first["sale"][f] + d
    # Withdrawn: every counter back where it started.
    refunds_bulk_import(records=record({}), import_source="ledger")
    assert _books(sale)["lines"] == [(0, 0, 0)] * 3
    assert _books(sale)["sale"]["amount_refunded"] == 0


def test_a_cancellation_refused_by_the_gateway_is_undone_and_its_row_deleted(
        write_path, django_capture_on_commit_callbacks):
    """The failure compensation is the cancellation's effect reversed: the sale is paid
    again, and its cancellation row is deleted: no cancel trace is left behind."""
    product = ProductFactory(stock=10)
    sale = SaleFactory(lines=[(1, 13)], tax_rate="0", gateway="sandbox", product=product)
    before = _books(sale)
    with django_capture_on_commit_callbacks(execute=True):  # the settle task, eagerly
        refund = sale_cancel(sale_id=sale.pk, reason="fraud", note="odd", restock=True,
                             alert_customer=True).refund
    assert refund is not None
    refund.refresh_from_db()
    assert refund.status == "failed"
    assert _books(sale) == before
    assert before["sale"]["status"] == "paid"


def test_the_ledger_refuses_to_cancel_a_sale_without_its_cancellation_row(write_path):
    """A cancelled sale always has its SaleCancellation row: an effect that cancels a sale
    holding none in memory is refused before anything is written."""
    sale = _sale()
    before = _books(sale)
    with pytest.raises(ValueError, match="without its SaleCancellation row"), \
            transaction.atomic():
        locked = sale_lock(sale.pk)
        effect = Effect(cancelled={sale.pk: 1})
        effect.apply([locked])
    with pytest.raises(ValueError, match="without its SaleCancellation row"), \
            transaction.atomic():
        locked = sale_lock(sale.pk)
        ledger_write(Effect(cancelled={sale.pk: 1}), {sale.pk: locked.sale})
    assert _books(sale) == before
