"""Sale numbers past a million sales; product rows locked in one order."""

import re
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from refunds.services import refund_create
from sales.models import SALE_NUMBER, Product, Sale, sale_number
from sales.services import stock_move
from tests.factories import ProductFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_sale_number_pads_to_six_digits_and_never_cuts_a_longer_id():
    assert sale_number(7) == "S-000007"
    assert sale_number(999_999) == "S-999999"
    assert sale_number(1_000_000) == "S-1000000"
    assert sale_number(123_456_789) == "S-123456789"


def test_the_sql_sale_number_is_the_python_one_past_a_million():
    ids = [7, 123, 999_999, 1_000_000, 1_000_001, 123_456_789]
    Sale.objects.bulk_create([Sale(id=pk) for pk in ids])
    Sale.objects.filter(pk__in=ids).update(number=SALE_NUMBER)
    numbers = dict(Sale.objects.filter(pk__in=ids).values_list("pk", "number"))
    assert numbers == {pk: sale_number(pk) for pk in ids}
    assert numbers[1_000_000] == "S-1000000" and numbers[999_999] == "S-999999"


@contextmanager
def _next_sale_id(next_id: int):
    """Make the next sale's id `next_id`: PostgreSQL's sequence is moved (and put back:
    sequences ignore rollbacks); on SQLite a row with the id before it does (AUTOINCREMENT),
    rolled back with the test."""
    if connection.vendor != "postgresql":
        Sale.objects.create(id=next_id - 1)
        yield
        return
    with connection.cursor() as cur:
        cur.execute("SELECT pg_get_serial_sequence('sales_sale', 'id')")
        seq = cur.fetchone()[0]
        cur.execute(f"SELECT last_value, is_called FROM {seq}")
        last_value, is_called = cur.fetchone()
        cur.execute("SELECT setval(%s, %s)", [seq, next_id - 1])
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT setval(%s, %s, %s)", [seq, last_value, is_called])


def test_sale_create_goes_on_past_the_millionth_sale():
    with _next_sale_id(999_999):
        sales = [SaleFactory(lines=[(1, 100)]) for _ in range(3)]
    _assert_numbered_past_a_million(sales)


def _assert_numbered_past_a_million(sales):
    assert [s.pk for s in sales] == [999_999, 1_000_000, 1_000_001]
    assert [s.number for s in sales] == ["S-999999", "S-1000000", "S-1000001"]
    stored = Sale.objects.filter(pk__in=[s.pk for s in sales]).order_by("pk")
    assert list(stored.values_list("number", flat=True)) == [s.number for s in sales]
    assert all(s.status == "paid" for s in stored)


def test_stock_moves_lock_the_products_in_pk_order_first(postgres):
    products = [ProductFactory(stock=10) for _ in range(3)]
    per_product = {products[2].pk: 1, products[0].pk: 2, products[1].pk: 3}
    with CaptureQueriesContext(connection) as ctx, transaction.atomic():
        stock_move(per_product, -1, kind="adjustment")
    sqls = [q["sql"] for q in ctx.captured_queries if "sales_product" in q["sql"]]
    lock = next(i for i, sql in enumerate(sqls) if "FOR UPDATE" in sql)
    update = next(i for i, sql in enumerate(sqls) if sql.startswith("UPDATE"))
    assert lock < update, sqls
    # ORDER BY the pk (Django may write it as the column's position, `ORDER BY 1`).
    assert re.search(r'ORDER BY (1|"sales_product"\."id") ASC FOR UPDATE', sqls[lock]), sqls
    stock = dict(Product.objects.values_list("pk", "stock"))
    assert [stock[p.pk] for p in products] == [8, 7, 9]


def test_a_restocking_refund_locks_its_products(postgres):
    product = ProductFactory(stock=10)
    sale = SaleFactory(lines=[(3, 1200)], product=product)
    with CaptureQueriesContext(connection) as ctx:
        refund_create(sale_id=sale.pk, items={sale.lines.get().pk: 1})
    assert any("sales_product" in q["sql"] and "FOR UPDATE" in q["sql"]
               for q in ctx.captured_queries)
    product.refresh_from_db()
    assert product.stock == 8
