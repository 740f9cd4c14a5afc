"""A sale is named by its id, number or external id; odd identifiers are a 404 in the
envelope, never a 500; a refund by id makes no lookup query of its own."""

from __future__ import annotations

import pytest

from tests.factories import SaleFactory

from .conftest import assert_error, assert_ok


@pytest.mark.parametrize("ident", ["%C2%B2", "%00", "a%00b", "99999999999999999999999", "٣"])
def test_odd_identifiers_are_a_404_on_every_sale_path(api, ident):
    assert_error(api.get(f"/api/v2/sales/{ident}/"), 404, "sale_not_found")
    assert_error(api.put(f"/api/v2/sales/cancel/{ident}", {}, format="json"), 404,
                 "sale_not_found")
    assert_error(api.put(f"/api/v2/sales/refund/{ident}", {}, format="json"), 404,
                 "sale_not_found")
    assert_error(api.post(f"/api/v2/sales/{ident}/refunds/", {}, format="json"), 404,
                 "sale_not_found")
    assert_error(api.post("/api/v2/orders/refund", {"order_id": "²"}, format="json"), 404,
                 "sale_not_found")


def test_an_external_id_made_of_digits_still_finds_its_sale(api):
    sale = SaleFactory(lines=[(2, 500)], external_id="900001")
    line = sale.lines.get()
    data = assert_ok(api.post("/api/v2/sales/900001/refunds/", {"items": [
        {"item_id": line.pk, "quantity": 1}]}, format="json"), 201)
    assert data["sale_id"] == sale.pk


def test_an_id_and_an_external_id_made_of_the_same_digits_are_ambiguous(api):
    first = SaleFactory(lines=[(2, 500)])
    SaleFactory(lines=[(2, 500)], external_id=str(first.pk))
    assert_error(api.post(f"/api/v2/sales/{first.pk}/refunds/", {}, format="json"), 409,
                 "ambiguous_sale")
    # Its number still names it, and only it.
    data = assert_ok(api.post(f"/api/v2/sales/{first.number}/refunds/", {}, format="json"),
                     201)
    assert data["sale_id"] == first.pk
