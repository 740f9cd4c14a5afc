"""Odd input on the admin's pages never answers a 500: the cases once found, and a small
fuzzer over every list's filters and search and the refund form's fields."""

from __future__ import annotations

import itertools

import pytest
from django.contrib import admin
from django.urls import reverse

from refunds.models import Refund
from tests.factories import SaleFactory

pytestmark = pytest.mark.django_db

# What broke something once, or nearly: NUL, numbers past every column, the last year,
# digits that are not ASCII, exponents, long text, impossible dates.
ODD = ["a\x00b", "99999999999999999999999999", "9999", "-1", "٣", "1e5000", "x" * 300,
       "2026-13-45"]


def test_a_non_numeric_credit_note_id_is_a_404(admin_client):
    for ident in ("abc", "1e5", "²", "99999999999999999999999"):
        url = reverse("admin:refunds_refund_credit_note", args=[ident])
        assert admin_client.get(url).status_code == 404


def test_a_nul_in_a_list_filter_is_an_invalid_lookup(admin_client):
    for params in ({"status__exact": "\x00"}, {"q": "a\x00"}, {"st\x00": "1"}):
        response = admin_client.get(reverse("admin:sales_sale_changelist"), params)
        assert response.status_code == 302 and response["Location"].endswith("?e=1")


@pytest.mark.parametrize("year", ["9999", "99999999999999999999", "0", "-5"])
def test_a_huge_year_in_the_date_filter_is_an_invalid_lookup(admin_client, year):
    response = admin_client.get(reverse("admin:sales_sale_changelist"),
                                {"created_at__year": year})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_a_year_in_range_still_filters(admin_client):
    SaleFactory(lines=[(1, 100)])
    assert admin_client.get(reverse("admin:sales_sale_changelist"),
                            {"created_at__year": "2026"}).status_code == 200


@pytest.mark.parametrize("amount", ["1e5000", "Infinity", "NaN", "-0.01", "1" * 40])
def test_an_odd_split_is_a_field_error(admin_client, amount):
    sale = SaleFactory(lines=[(3, 1000)])
    line, payment = sale.lines.get(), sale.payments.get()
    response = admin_client.post(reverse("admin:sales_sale_refund", args=[sale.pk]), {
        "type": "refund", "restock": "on", "online": "on", "reason": "requested_by_customer",
        "note": "", "expected_refunded_amount": 0, f"qty_{line.pk}": 1,
        f"split_{payment.pk}": amount})
    assert response.status_code == 200
    assert "is not an amount" in response.content.decode()
    assert not Refund.objects.exists()


def _changelists():
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_module_permission:
            continue
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
        yield name, model_admin


def test_fuzz_every_admin_list_with_odd_filters_and_searches(admin_client):
    """Every list, every filter parameter its filters declare, the search and the date
    hierarchy, with each odd value: never a 500."""
    SaleFactory(lines=[(2, 500)])
    for name, model_admin in _changelists():
        url = reverse(name)
        first = admin_client.get(url)
        assert first.status_code < 500, name
        params = {"q", "o", "p", "e"}
        cl = getattr(first, "context_data", {}) or {}
        changelist = cl.get("cl")
        if changelist is not None:
            for spec in changelist.filter_specs:
                params.update(spec.expected_parameters())
            if model_admin.date_hierarchy:
                params.update(f"{model_admin.date_hierarchy}__{part}"
                              for part in ("year", "month", "day"))
        for param, value in itertools.product(sorted(params), ODD):
            response = admin_client.get(url, {param: value})
            assert response.status_code < 500, (name, param, value)


def test_fuzz_the_refund_form_fields(admin_client):
    sale = SaleFactory(lines=[(3, 1000)])
    line, payment = sale.lines.get(), sale.payments.get()
    url = reverse("admin:sales_sale_refund", args=[sale.pk])
    base = {"type": "refund", "restock": "on", "online": "on",
            "reason": "requested_by_customer", "note": "", "expected_refunded_amount": 0,
            f"qty_{line.pk}": 1}
    for field, value in itertools.product(
        ["type", "reason", "note", "expected_refunded_amount", f"qty_{line.pk}",
         f"split_{payment.pk}", "returned_date", "batch_id"], ODD,
    ):
        response = admin_client.post(url, {**base, field: value, "preview": "1"})
        assert response.status_code < 500, (field, value)
