"""No query per row: each list, and a sale's page, runs as many queries for 50 rows as
for 5 (the rows' __str__ read their sale, line or payment: select_related covers it)."""

from __future__ import annotations

import itertools
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from refunds.models import CustomerAlert
from refunds.services import RefundOptions, refund_create
from tests.factories import SaleFactory

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)


def _refunded_sales(count: int) -> None:
    """`count` online sales, each paid by card and half refunded with the customer alerted:
    one order, refund, refund line, allocation and payment each, and their alerts."""
    for _ in range(count):
        sale = SaleFactory(lines=[(2, 1000)], channel="storefront",
                           external_id=f"QC-{next(_numbers)}")
        refund_create(sale_id=sale.pk, items={sale.lines.get().pk: 1},
                      options=RefundOptions(alert_customer=True))


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


LISTS = [
    "admin:sales_order_changelist",
    "admin:refunds_refund_changelist",
    "admin:refunds_customeralert_changelist",
    "admin:refunds_refundline_changelist",
    "admin:refunds_refundpayment_changelist",
    "admin:sales_payment_changelist",
]


@pytest.mark.parametrize("name", LISTS)
def test_list_runs_the_same_queries_for_5_or_50_rows(admin_client,
                                                     django_assert_max_num_queries, name):
    url = reverse(name)
    _refunded_sales(5)
    admin_client.get(url)  # the first request warms caches (content types, session)
    few = _queries(admin_client, url)
    _refunded_sales(45)
    with django_assert_max_num_queries(few):
        response = admin_client.get(url)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 50  # the rows were all rendered


def _big_sale(rows: int):
    """A sale with `rows` lines and `rows` payments, and `rows` refunds of one unit each
    (one allocation each, to its own payment), the customer alerted of each."""
    sale = SaleFactory(lines=[(1, 1000)] * rows,
                       payments=[{"amount": 1200, "method": "card"}] * rows)
    lines = list(sale.lines.order_by("pk"))
    payments = list(sale.payments.order_by("pk"))
    for line, payment in zip(lines, payments, strict=True):
        refund_create(sale_id=sale.pk, items={line.pk: 1}, splits={payment.pk: 1200},
                      options=RefundOptions(alert_customer=True))
    return sale


def test_sale_page_runs_the_same_queries_for_5_or_50_lines_payments_and_refunds(
        admin_client, django_assert_max_num_queries):
    small, big = _big_sale(5), _big_sale(50)
    admin_client.get(reverse("admin:sales_sale_change", args=[small.pk]))  # warm-up
    few = _queries(admin_client, reverse("admin:sales_sale_change", args=[small.pk]))
    with django_assert_max_num_queries(few):
        response = admin_client.get(reverse("admin:sales_sale_change", args=[big.pk]))
    html = response.content.decode()
    # Each refund's header names the sale by its number.
    assert len(re.findall(rf"Refund #\d+ of {big.number}\s", html)) == 50


def test_refund_page_runs_the_same_queries_for_5_or_50_lines_and_payments(
        admin_client, django_assert_max_num_queries):
    def refunded(rows):
        sale = SaleFactory(lines=[(1, 1000)] * rows,
                           payments=[{"amount": 1200, "method": "card"}] * rows)
        return refund_create(sale_id=sale.pk).refund  # everything: a line, a payment each

    small, big = refunded(5), refunded(50)
    url = "admin:refunds_refund_change"
    admin_client.get(reverse(url, args=[small.pk]))  # warm-up
    few = _queries(admin_client, reverse(url, args=[small.pk]))
    with django_assert_max_num_queries(few):
        response = admin_client.get(reverse(url, args=[big.pk]))
    html = response.content.decode()
    # The rows' headers: "1 × Item 7", "£12.00 to Card (succeeded)".
    assert len(re.findall(r"1 × Item \d+\s", html)) == 50
    assert html.count("£12.00 to Card (succeeded)") == 50


def test_alerts_list_counts_boundedly_without_facets_and_searches_exactly(admin_client):
    _refunded_sales(3)
    alert = CustomerAlert.objects.filter(channel="email").order_by("pk").first()
    url = reverse("admin:refunds_customeralert_changelist")
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(url, {"_facets": "1"}).status_code == 200
    alert_sql = [q["sql"] for q in queries if "refunds_customeralert" in q["sql"]]
    counts = [sql for sql in alert_sql if "COUNT(" in sql.upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)  # capped paginator
    assert not [sql for sql in alert_sql if " FILTER (WHERE" in sql.upper()]  # no facets
    for term, found in ((alert.sale.number, alert.sale.alerts.count()),
                        (alert.recipient[:12], 1), (alert.recipient.upper(), 1)):
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url, {"q": term})
        assert response.context["cl"].result_count == found, term
        sql = " ".join(q["sql"] for q in queries)
        # Exact or prefix matches only: no LIKE '%term%' over the alerts and their sales.
        assert f"%{term}%" not in sql and f"%{term.upper()}%" not in sql
