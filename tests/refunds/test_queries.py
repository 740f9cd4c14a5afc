"""A refund does a fixed number of queries, whatever the number of lines."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from refunds.services import RefundOptions, refund_create, sale_cancel
from tests.factories import ProductFactory, SaleFactory

pytestmark = pytest.mark.django_db


def count(fn):
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def sale_with(n):
    product = ProductFactory()
    return SaleFactory(lines=[(2, 100 + i) for i in range(n)], product=product, shipping_fee=10)


def test_refund_queries_do_not_grow_with_lines(django_assert_max_num_queries):
    small, big = sale_with(1), sale_with(50)
    opts = RefundOptions(alert_customer=True)
    n_small = count(lambda: refund_create(sale_id=small.pk, options=opts))
    n_big = count(lambda: refund_create(sale_id=big.pk, options=opts))
    assert n_small == n_big
    third = sale_with(50)
    with django_assert_max_num_queries(15):
        refund_create(sale_id=third.pk, options=opts)


def test_partial_refund_queries_do_not_grow_with_named_lines():
    small, big = sale_with(1), sale_with(50)
    n_small = count(lambda: refund_create(
        sale_id=small.pk, items={ln.pk: 1 for ln in small.lines.all()}))
    n_big = count(lambda: refund_create(
        sale_id=big.pk, items={ln.pk: 1 for ln in big.lines.all()}))
    assert n_small == n_big <= 15


def test_cancel_queries_do_not_grow_with_lines():
    small, big = sale_with(1), sale_with(50)
    assert count(lambda: sale_cancel(sale_id=small.pk, reason="customer")) == count(
        lambda: sale_cancel(sale_id=big.pk, reason="customer"))
