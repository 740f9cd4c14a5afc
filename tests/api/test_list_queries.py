"""A list page costs a fixed number of queries whatever its size (README, "One envelope")."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from refunds.services import refunds_bulk_import
from tests.factories import CustomerFactory, ProductFactory, SaleFactory, UserFactory

from .conftest import assert_ok

pytestmark = pytest.mark.django_db

ROWS = 100


def _sales(n: int = ROWS) -> list:
    customers = CustomerFactory.create_batch(5)
    return [SaleFactory(lines=[(2, 500), (1, 300)], customer=customers[i % 5])
            for i in range(n)]


def _refunds() -> None:
    """Each sale refunded twice (lines and allocations to prefetch), by a user."""
    records = []
    for sale in _sales(ROWS // 2):
        first, second = sale.lines.order_by("pk")
        records += [
            {"id": f"{sale.pk}-a", "sale_id": sale.pk,
             "line_items": [{"item_id": first.pk, "quantity": 1}]},
            {"id": f"{sale.pk}-b", "sale_id": sale.pk,
             "line_items": [{"item_id": first.pk, "quantity": 1},
                            {"item_id": second.pk, "quantity": 1}]},
        ]
    refunds_bulk_import(records=records, actor=UserFactory(username="importer"))


MAKE = {
    "/api/v2/sales/": _sales,
    "/api/v2/refunds/": _refunds,
    "/api/v2/products/": lambda: ProductFactory.create_batch(ROWS),
    "/api/v2/customers/": lambda: CustomerFactory.create_batch(ROWS),
}


@pytest.mark.parametrize("url", list(MAKE))
def test_a_list_page_of_100_costs_the_queries_of_a_page_of_1(api, url):
    MAKE[url]()
    assert_ok(api.get(url, {"page_size": 1}))  # the key's last_used_at is written once
    counts = {}
    for size in (1, ROWS):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(url, {"page_size": size})
        data = assert_ok(response)
        assert len(data) == size
        assert response.json()["pagination"]["count"] >= ROWS
        counts[size] = len(queries.captured_queries)
    assert counts[1] == counts[ROWS], counts
    assert counts[ROWS] <= 6, counts  # key, permissions, count, page, prefetches
