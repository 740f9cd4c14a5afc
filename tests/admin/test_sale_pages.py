"""The Sales and Orders lists and a sale's page."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from refunds.services import RefundOptions, refund_create
from sales.admin import CappedCountPaginator
from sales.models import Sale

pytestmark = pytest.mark.django_db


def test_sales_list_shows_money_columns_and_status_badge(admin_client, sale_factory):
    sale = sale_factory(lines=[(2, 1000)])
    response = admin_client.get(reverse("admin:sales_sale_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert sale.number in html
    assert "£24.00" in html  # total 2 x 10.00 + 20% tax
    assert 'class="bo-badge bo-badge-green"' in html


def test_sales_list_runs_the_same_queries_for_5_or_50_sales(admin_client, sale_factory):
    sale_factory()
    url = reverse("admin:sales_sale_changelist")
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    for _ in range(20):
        sale_factory()
    with CaptureQueriesContext(connection) as many:
        admin_client.get(url)
    assert len(many) == len(few)


def test_sales_list_never_counts_the_whole_table(admin_client, sale_factory):
    sale_factory()
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(reverse("admin:sales_sale_changelist"))
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # One bounded count (a LIMIT inside), no full-table count.
    assert counts and all("LIMIT" in sql.upper() for sql in counts)


def test_capped_paginator_counts_at_most_the_cap(sale_factory, monkeypatch):
    for _ in range(5):
        sale_factory()
    monkeypatch.setattr(CappedCountPaginator, "CAP", 3)
    paginator = CappedCountPaginator(Sale.objects.filter(total__gt=0).order_by("-pk"), 2)
    assert paginator.count == 4  # CAP + 1: "more than 3"
    assert paginator.num_pages == 2


@pytest.mark.parametrize("term", ["number", "external_id", "customer_email", "customer_name"])
def test_sales_search_finds_by_number_external_id_and_customer(admin_client, sale_factory,
                                                               term):
    sale = sale_factory(external_id="WEB-4242")
    other = sale_factory()
    query = {
        "number": sale.number, "external_id": "WEB-4242",
        "customer_email": sale.customer.email, "customer_name": sale.customer.name,
    }[term]
    response = admin_client.get(reverse("admin:sales_sale_changelist"), {"q": query})
    html = response.content.decode()
    assert sale.number in html
    assert other.number not in html


def test_sales_filters_by_status_and_channel(admin_client, sale_factory):
    paid = sale_factory()
    unpaid = sale_factory(paid=False, channel="storefront")
    url = reverse("admin:sales_sale_changelist")
    html = admin_client.get(url, {"status__exact": "unpaid"}).content.decode()
    assert unpaid.number in html and paid.number not in html
    html = admin_client.get(url, {"channel__exact": "storefront"}).content.decode()
    assert unpaid.number in html and paid.number not in html


def test_orders_list_shows_only_online_channels(admin_client, sale_factory):
    online = sale_factory(channel="storefront", external_id="WEB-1")
    api = sale_factory(channel="api", external_id="API-1")
    pos = sale_factory(channel="pos")
    html = admin_client.get(reverse("admin:sales_order_changelist")).content.decode()
    assert online.number in html and api.number in html
    assert pos.number not in html


def test_sale_page_shows_lines_payments_refunds_and_audit(admin_client, sale_factory,
                                                         staff_user):
    sale = sale_factory(lines=[(3, 1200)])
    line = sale.lines.get()
    refund = refund_create(sale_id=sale.pk, items={line.pk: 1},
                           options=RefundOptions(reason="damaged", note="cracked"),
                           actor=staff_user).refund
    response = admin_client.get(reverse("admin:sales_sale_change", args=[sale.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Item 1" in html
    assert "Refund…" in html and "Cancel…" not in html  # partly refunded: refund the rest
    assert f"#{refund.pk}" in html
    assert "Damaged" in html and "cracked" in html
    assert "restock" in html and "staff" in html  # options and who
    assert reverse("admin:refunds_refund_credit_note", args=[refund.pk]) in html


def test_sale_page_is_read_only(admin_client, sale_factory):
    sale = sale_factory()
    response = admin_client.get(reverse("admin:sales_sale_change", args=[sale.pk]))
    assert 'name="_save"' not in response.content.decode()
    assert admin_client.get(reverse("admin:sales_sale_add")).status_code == 403
    assert admin_client.get(reverse("admin:sales_sale_delete", args=[sale.pk])).status_code == 403


def test_order_page_has_its_own_refund_button(admin_client, sale_factory):
    sale = sale_factory(channel="storefront", external_id="WEB-9")
    html = admin_client.get(reverse("admin:sales_order_change", args=[sale.pk])).content.decode()
    assert reverse("admin:sales_order_refund", args=[sale.pk]) in html
    assert reverse("admin:sales_order_cancel", args=[sale.pk]) in html


def test_sales_list_date_hierarchy_asks_only_min_and_max(admin_client, sale_factory):
    sale = sale_factory()
    url = reverse("admin:sales_sale_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    assert not [q for q in queries if "DISTINCT" in q["sql"].upper()]
    year = sale.created_at.year
    drilled = admin_client.get(url, {"created_at__year": year,
                                     "created_at__month": sale.created_at.month})
    assert drilled.status_code == 200 and sale.number in drilled.content.decode()


def test_sale_page_shows_tax_rates_as_percentages(admin_client, sale_factory):
    sale = sale_factory(lines=[
        {"quantity": 1, "unit_price": 1000, "description": "Book", "tax_rate": "0.20"},
        {"quantity": 1, "unit_price": 1000, "description": "Fuel", "tax_rate": "0.175"},
        {"quantity": 1, "unit_price": 1000, "description": "Bread", "tax_rate": "0"},
    ])
    html = admin_client.get(reverse("admin:sales_sale_change", args=[sale.pk])).content.decode()
    rates = re.findall(r'<td class="field-tax_rate"><p>([^<]*)</p>', html)
    assert rates == ["20%", "17.5%", "0%"]


@pytest.mark.parametrize("name", ["admin:sales_sale_changelist", "admin:sales_order_changelist"])
def test_lists_show_kind_and_channel_in_one_column_and_short_dates(admin_client, sale_factory,
                                                                   name):
    sale = sale_factory(kind="receipt", channel="storefront", external_id="WEB-3")
    html = admin_client.get(reverse(name)).content.decode()
    assert "Receipt · Storefront" in html
    assert 'class="column-kind' in html
    assert 'class="column-channel' not in html and 'class="field-channel' not in html
    created = timezone.localtime(sale.created_at)
    # "1 Dec 2026 19:03": the date never breaks, the time may go under it.
    assert f"{created:%-d\u00a0%b\u00a0%Y %H:%M}" in html
