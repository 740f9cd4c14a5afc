"""Product stock and its ledger: every move of `Product.stock` writes a StockMove, and
audit_books recomputes the stock from them."""

from __future__ import annotations

import pytest
from django.db.models import F, Sum
from django.urls import reverse

from refunds.services import RefundOptions, refund_create, refund_settle, sale_cancel
from refunds.services import ledger as ledger_module
from refunds.services.audit import Difference, books_audit
from sales.choices import StockMoveKind
from sales.inputs import LineInput, SaleUpdate
from sales.models import Payment, Product, StockMove
from sales.services import product_save, sale_update
from tests.factories import ProductFactory, SaleFactory
from tests.migrating import migrated_to

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["one_statement", "orm"])
def both_write_paths(request, monkeypatch):
    """The ledger's two ways of writing: PostgreSQL's single statement (skipped, or
    failed in CI, on SQLite) and the ORM's, on whichever database the suite runs."""
    if request.param:
        request.getfixturevalue("postgres")
    monkeypatch.setattr(ledger_module, "WRITE_IN_ONE_STATEMENT", request.param)
    return request.param


def moved(product: Product) -> int:
    return StockMove.objects.filter(product=product).aggregate(s=Sum("delta"))["s"] or 0


def kinds(product: Product) -> list[tuple[str, int]]:
    return list(StockMove.objects.filter(product=product).order_by("pk")
                .values_list("kind", "delta"))


def assert_stock_is_its_moves(*products: Product) -> None:
    for product in products:
        product.refresh_from_db()
        assert product.stock == moved(product)
    assert books_audit() == []


def test_sales_edits_refunds_and_cancels_write_their_moves(both_write_paths):
    mug, cup = ProductFactory(stock=20), ProductFactory(stock=5)
    sale = SaleFactory(lines=[(3, 1200)], product=mug, paid=False)
    sale_update(sale_id=sale.pk, data=SaleUpdate(lines=[
        LineInput(product_id=mug.pk, quantity=2, unit_price=1200),
        LineInput(product_id=cup.pk, quantity=1, unit_price=500)]))
    sale_cancel(sale_id=sale.pk, reason="customer")  # unpaid: no refund, restocked
    paid = SaleFactory(lines=[(4, 1200)], product=mug)
    line = paid.lines.get()
    refund = refund_create(sale_id=paid.pk, items={line.pk: 1},
                           options=RefundOptions(restock=True)).refund
    cancelled = SaleFactory(lines=[(2, 1200)], product=mug)
    cancel = sale_cancel(sale_id=cancelled.pk, reason="customer", restock=True).refund

    assert kinds(mug) == [("opening", 20), ("sale", -3), ("sale_edit", 1), ("cancel", 2),
                          ("sale", -4), ("refund", 1), ("sale", -2), ("cancel", 2)]
    assert kinds(cup) == [("opening", 5), ("sale_edit", -1), ("cancel", 1)]
    assert_stock_is_its_moves(mug, cup)
    assert mug.stock == 20 - 4 + 1 - 2 + 2 and cup.stock == 5
    restock = StockMove.objects.filter(product=mug, kind="refund").get()
    assert (restock.sale_id, restock.refund_id) == (paid.pk, refund.pk)
    assert cancel is not None
    assert StockMove.objects.filter(refund_id=cancel.pk).get().sale_id == cancelled.pk


def test_a_refused_restocking_refund_takes_its_units_back_with_a_move(both_write_paths):
    mug = ProductFactory(stock=10)
    sale = SaleFactory(lines=[(2, 900)], product=mug, gateway="sandbox")
    Payment.objects.filter(sale=sale).update(gateway_reference="fail")
    refund = refund_create(sale_id=sale.pk, options=RefundOptions(restock=True)).refund
    refund_settle(refund_id=refund.pk)
    assert [(m.kind, m.delta, m.refund_id) for m in StockMove.objects.filter(
        product=mug, refund_id=refund.pk).order_by("pk")] == [
        ("refund", 2, refund.pk), ("refund", -2, refund.pk)]
    assert_stock_is_its_moves(mug)
    assert mug.stock == 8


def test_a_stock_moved_outside_the_ledger_is_reported(both_write_paths):
    mug, cup = ProductFactory(stock=10), ProductFactory(stock=3)
    sale = SaleFactory(lines=[(1, 100)], product=mug)
    Product.objects.filter(pk=mug.pk).update(stock=F("stock") + 5)
    assert books_audit() == [Difference("product", mug.pk, "stock", 14, 9)]
    assert books_audit()[0].line() == f"product={mug.pk} field=stock stored=14 ledger=9"
    # Asked about a sale: the products its lines sell, not the others.
    Product.objects.filter(pk=cup.pk).update(stock=0)
    assert books_audit([sale.pk]) == [Difference("product", mug.pk, "stock", 14, 9)]
    assert len(books_audit()) == 2


def test_product_save_records_the_opening_and_each_adjustment():
    mug = product_save(Product(sku="MUG", name="Mug", price=100, stock=7))
    mug.stock = 4
    product_save(mug)
    mug.name = "Big mug"  # the stock unchanged: no move
    product_save(mug)
    empty = product_save(Product(sku="NONE", name="None", price=1))
    assert kinds(mug) == [("opening", 7), ("adjustment", -3)]
    assert kinds(empty) == []
    assert_stock_is_its_moves(mug, empty)


def test_an_adjustment_counts_a_sale_made_since_the_product_was_read():
    mug = ProductFactory(stock=10)
    stale = Product.objects.get(pk=mug.pk)
    SaleFactory(lines=[(3, 100)], product=mug)
    stale.stock = 12  # staff count 12 on the shelf: the ledger moves from 7, not 10
    product_save(stale)
    assert kinds(mug)[-1] == ("adjustment", 5)
    assert_stock_is_its_moves(mug)


def test_the_admin_records_its_stock_as_moves(admin_client):
    response = admin_client.post(reverse("admin:sales_product_add"),
                                 {"sku": "CUP-1", "name": "Cup", "price": 300, "stock": 6})
    assert response.status_code == 302
    cup = Product.objects.get(sku="CUP-1")
    response = admin_client.post(reverse("admin:sales_product_change", args=[cup.pk]),
                                 {"sku": "CUP-1", "name": "Cup", "price": 300, "stock": 2})
    assert response.status_code == 302
    assert kinds(cup) == [("opening", 6), ("adjustment", -4)]
    assert_stock_is_its_moves(cup)


def test_stock_move_is_three_queries_whatever_the_number_of_products(
        django_assert_num_queries):
    from sales.services import stock_move

    products = [ProductFactory(stock=1) for _ in range(6)]
    with django_assert_num_queries(3):  # lock, update, insert the moves
        stock_move({p.pk: 2 for p in products}, -1, kind=StockMoveKind.ADJUSTMENT)
    assert_stock_is_its_moves(*products)
    assert {p.stock for p in products} == {-1}


BEFORE = [("sales", "0005_salecancellation")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_opens_each_product_with_its_stock_and_reverses():
    def openings() -> list[tuple[int, str, int]]:
        return list(StockMove.objects.order_by("product_id")
                    .values_list("product_id", "kind", "delta"))

    with migrated_to(BEFORE) as apps:
        old = apps.get_model("sales", "Product")
        a = old.objects.create(sku="A", name="A", price=1, stock=7)
        b = old.objects.create(sku="B", name="B", price=1, stock=-2)  # on back order
        c = old.objects.create(sku="C", name="C", price=1, stock=0)
    assert openings() == [(a.pk, "opening", 7), (b.pk, "opening", -2), (c.pk, "opening", 0)]
    assert books_audit() == []
    with migrated_to(BEFORE):  # reversed (its rows deleted), then applied again
        pass
    assert openings() == [(a.pk, "opening", 7), (b.pk, "opening", -2), (c.pk, "opening", 0)]
