"""One sale per name: an external id may not look like a sale number, every door resolves
a name through one function, and a name that still means two sales is a 409."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from refunds.models import Refund
from sales.models import Sale
from sales.selectors import sale_resolve_id, sale_resolve_many
from tests.factories import SaleFactory

from .conftest import assert_error, assert_ok

pytestmark = pytest.mark.django_db

SALE = {"kind": "invoice", "currency": "GBP",
        "lines": [{"sku": "MUG-1", "description": "Mug", "quantity": 1, "unit_price": 100}]}


@pytest.mark.parametrize("external_id", ["S-000006", "s-9", "S-1000000", " S-000001 "])
def test_an_external_id_shaped_like_a_sale_number_is_refused(api, external_id):
    err = assert_error(api.post("/api/v2/sales/", {**SALE, "external_id": external_id},
                                format="json"), 400, "invalid")
    assert "sale number" in err["errors"]["external_id"][0]
    assert not Sale.objects.exists()


def test_an_external_id_shaped_like_a_sale_number_is_refused_on_edit(api):
    sale = SaleFactory(lines=[(1, 100)], paid=False)
    assert_error(api.patch(f"/api/v2/sales/{sale.pk}/", {"external_id": "S-000042"},
                           format="json"), 400, "invalid")
    sale.refresh_from_db()
    assert sale.external_id != "S-000042"


def test_external_ids_that_are_not_numbers_are_still_taken(api):
    for ext in ("SO-000001", "S-12a", "WEB-1001", "123456"):
        assert_ok(api.post("/api/v2/sales/", {**SALE, "external_id": ext}, format="json"), 201)


def _legacy_sale_named_like(other: Sale) -> Sale:
    """A sale stored before the rule, whose external id is another sale's number."""
    legacy = SaleFactory(lines=[(2, 500)])
    Sale.objects.filter(pk=legacy.pk).update(external_id=other.number)
    return legacy


def test_a_number_that_is_also_an_external_id_is_ambiguous_at_every_door(api):
    target = SaleFactory(lines=[(2, 500)])
    _legacy_sale_named_like(target)
    name = target.number
    assert_error(api.get(f"/api/v2/sales/{name}/"), 409, "ambiguous_sale")
    assert_error(api.post(f"/api/v2/sales/{name}/refunds/", {}, format="json"), 409,
                 "ambiguous_sale")
    assert_error(api.post(f"/api/v2/sales/{name}/refunds/preview/", {}, format="json"), 409,
                 "ambiguous_sale")
    assert_error(api.put(f"/api/v2/sales/cancel/{name}", {}, format="json"), 409,
                 "ambiguous_sale")
    assert_error(api.put(f"/api/v2/sales/refund/{name}", {}, format="json"), 409,
                 "ambiguous_sale")
    assert_error(api.post("/api/v2/orders/refund", {"order_id": name}, format="json"), 409,
                 "ambiguous_sale")
    line = target.lines.get()
    err = assert_error(api.post("/api/v2/refunds/validate", [{
        "id": "r-1", "sale_id": name, "line_items": [{"item_id": line.pk, "quantity": 1}],
    }], format="json"), 400, "invalid_records")
    assert "more than one sale" in err["errors"]["[0].sale_id"][0]
    with pytest.raises(CommandError, match="ambiguous_sale"):
        call_command("refund_sale", name, "--commit", stdout=StringIO())
    with pytest.raises(CommandError, match="ambiguous_sale"):
        call_command("cancel_sale", name, "--commit", stdout=StringIO())
    assert not Refund.objects.exists()
    assert not Sale.objects.filter(status="cancelled").exists()


def test_the_resolver_reads_only_ascii_digits_as_an_id():
    sale = SaleFactory(lines=[(1, 100)], external_id="WEB-7")
    assert sale_resolve_id(str(sale.pk)) == sale.pk
    assert sale_resolve_id(f" {sale.number} ") == sale.pk
    assert sale_resolve_id("WEB-7") == sale.pk
    found, failed = sale_resolve_many([str(sale.pk), "²", "WEB-7", "nope"])
    assert found == {str(sale.pk): sale.pk, "WEB-7": sale.pk}
    assert {code.code for code in failed.values()} == {"sale_not_found"}


def test_the_migration_reports_sales_that_break_the_rule():
    from importlib import import_module

    report = import_module("sales.migrations.0004_hardening_external_id")
    target = SaleFactory(lines=[(1, 100)])
    legacy = _legacy_sale_named_like(target)
    digits = SaleFactory(lines=[(1, 100)], external_id=str(target.pk))
    SaleFactory(lines=[(1, 100)], external_id="WEB-1")
    rows = report.sales_breaking_the_rule(Sale)
    assert [pk for pk, _, _ in rows] == sorted([legacy.pk, digits.pk])
