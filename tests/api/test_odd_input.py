"""Odd input is a 400 naming the field, never a 500: NUL characters (PostgreSQL refuses
them in text), lone surrogates (UTF-8 cannot encode them), integers no id column holds
(SQLite overflows past 2**63-1). Run on PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

import pytest

from refunds.models import Refund, RefundImport
from tests.factories import SaleFactory

from .conftest import assert_error, assert_ok

pytestmark = pytest.mark.django_db

BULK = ["/api/v2/refunds/validate", "/api/v2/refunds/json"]
TOO_BIG = 2**63
NUL = "Null characters are not allowed."


def record(sale, **extra):
    return {"id": "r-1", "sale_id": sale.pk, "restock": False,
            "line_items": [{"item_id": sale.lines.first().pk, "quantity": 1}], **extra}


@pytest.mark.parametrize("url", BULK)
@pytest.mark.parametrize("field,value", [
    ("id", "r\x00-1"), ("sale_id", "1\x00"), ("note", "cracked\x00"),
    ("batch_id", "b\x00"), ("reason", "damaged\x00"),
])
def test_a_nul_in_a_bulk_record_is_refused_on_its_field(api, paid_sale, url, field, value):
    err = assert_error(api.post(url, [record(paid_sale, **{field: value})], format="json"),
                       400, "invalid_records")
    assert err["errors"] == {f"[0].{field}": [NUL]}
    assert err["records"][0]["index"] == 0
    assert not Refund.objects.exists()


@pytest.mark.parametrize("url", BULK)
def test_a_nul_in_an_order_id_is_refused_on_that_field(api, paid_sale, url):
    rec = {**record(paid_sale), "sale_id": None, "order_id": "WEB-1\x00"}
    err = assert_error(api.post(url, [rec], format="json"), 400, "invalid_records")
    assert err["errors"] == {"[0].order_id": [NUL]}


def test_a_nul_refuses_the_whole_batch_and_the_failure_is_recorded(api, paid_sale):
    other = SaleFactory(lines=[(2, 500)])
    records = [record(other, id="fine"), record(paid_sale, id="bad\x00id", note="x\x00")]
    err = assert_error(api.post("/api/v2/refunds/json", records, format="json"), 400,
                       "invalid_records")
    assert set(err["errors"]) == {"[1].id", "[1].note"}
    assert err["records"] == [{"index": 1, "id": "bad\ufffdid",
                               "errors": {"id": [NUL], "note": [NUL]}}]
    assert not Refund.objects.exists()  # all or nothing: "fine" was not written either
    assert RefundImport.objects.get().outcome == "failure"


def test_a_lone_surrogate_is_refused_on_its_field(api, paid_sale):
    body = ('[{"id": "r-1", "sale_id": ' + str(paid_sale.pk)
            + ', "note": "bad \\ud800", "line_items": []}]')
    response = api.generic("POST", "/api/v2/refunds/json", body,
                           content_type="application/json")
    err = assert_error(response, 400, "invalid_records")
    assert err["errors"] == {"[0].note": ["Surrogate characters are not allowed: U+D800."]}


@pytest.mark.parametrize("url", BULK)
@pytest.mark.parametrize("path,change", [
    ("sale_id", {"sale_id": 0}),
    ("sale_id", {"sale_id": -5}),
    ("sale_id", {"sale_id": TOO_BIG}),
    ("order_id", {"sale_id": None, "order_id": TOO_BIG}),
    ("line_items[0].item_id", {"line_items": [{"item_id": TOO_BIG, "quantity": 1}]}),
    ("line_items[0].item_id", {"line_items": [{"item_id": 0, "quantity": 1}]}),
    ("line_items[0].quantity", {"line_items": [{"item_id": 1, "quantity": 2**31}]}),
])
def test_integers_out_of_range_in_a_bulk_record_are_refused(api, paid_sale, url, path, change):
    err = assert_error(api.post(url, [record(paid_sale, **change)], format="json"), 400,
                       "invalid_records")
    assert list(err["errors"]) == [f"[0].{path}"]
    assert "from 1 to" in err["errors"][f"[0].{path}"][0]


def test_the_largest_quantity_is_parsed_and_refused_by_the_rules(api, paid_sale):
    rec = record(paid_sale, line_items=[{"item_id": paid_sale.lines.first().pk,
                                         "quantity": 2**31 - 1}])
    err = assert_error(api.post("/api/v2/refunds/validate", [rec], format="json"), 400,
                       "invalid_records")
    assert err["errors"] == {"[0].line_items[0].quantity": ["only 3 left to refund"]}


@pytest.mark.parametrize("url", [*BULK, "/api/v2/refunds/status"])
def test_a_nul_in_the_source_parameter_is_a_400(api, paid_sale, url):
    if url.endswith("status"):
        response = api.get(f"{url}?source=shop%00a")
    else:
        response = api.post(f"{url}?source=shop%00a", [record(paid_sale)], format="json")
    err = assert_error(response, 400, "invalid")
    assert err["errors"] == {"source": [NUL]}
    assert not Refund.objects.exists()


@pytest.mark.parametrize("value", ["0", "-1", str(TOO_BIG), "1.5", "1e3", "9" * 5000])
@pytest.mark.parametrize("url,param", [("/api/v2/refunds/", "sale"),
                                       ("/api/v2/sales/", "customer")])
def test_number_filters_outside_the_id_range_are_a_400(api, paid_sale, url, param, value):
    err = assert_error(api.get(url, {param: value}), 400, "invalid")
    assert list(err["errors"]) == [param]


def test_number_filters_at_the_edges_of_the_range_answer(api, paid_sale):
    assert assert_ok(api.get("/api/v2/refunds/", {"sale": str(2**63 - 1)})) == []
    assert assert_ok(api.get("/api/v2/sales/", {"customer": str(2**63 - 1)})) == []
    sales = assert_ok(api.get("/api/v2/sales/", {"customer": str(paid_sale.customer_id)}))
    assert [s["id"] for s in sales] == [paid_sale.pk]


def _sale_body(**line):
    return {"lines": [{"quantity": 1, "unit_price": 100, "description": "x", **line}]}


@pytest.mark.parametrize("value", [0, -1, TOO_BIG])
def test_integer_ids_in_bodies_outside_the_id_range_are_a_400(api, paid_sale, value):
    line = paid_sale.lines.first()
    payment = paid_sale.payments.first()
    refunds = f"/api/v2/sales/{paid_sale.pk}/refunds/"
    cases = [
        ("post", "/api/v2/sales/", _sale_body(product_id=value), "lines[0].product_id"),
        ("post", "/api/v2/sales/", {**_sale_body(), "customer_id": value}, "customer_id"),
        ("patch", f"/api/v2/sales/{paid_sale.pk}/", {"customer_id": value}, "customer_id"),
        ("post", refunds, {"items": [{"item_id": value, "quantity": 1}]}, "items[0].item_id"),
        ("post", f"{refunds}preview/", {"items": [{"item_id": value, "quantity": 1}]},
         "items[0].item_id"),
        ("post", refunds, {"items": [{"item_id": line.pk, "quantity": 1}],
                           "splits": [{"payment_id": value, "amount": 1440}]},
         "splits[0].payment_id"),
        ("post", "/api/v2/orders/refund", {"order_id": value}, "order_id"),
        ("post", refunds, {"expected_refunded_amount": TOO_BIG if value == TOO_BIG else -1},
         "expected_refunded_amount"),
    ]
    for method, url, body, path in cases:
        err = assert_error(getattr(api, method)(url, body, format="json"), 400, "invalid")
        assert path in err["errors"], (url, body, err)
    assert payment.pk and not Refund.objects.exists()


def test_an_order_id_sent_as_digits_in_a_string_is_still_an_external_id(api):
    SaleFactory(lines=[(1, 500)], external_id=str(TOO_BIG))
    data = assert_ok(api.post("/api/v2/orders/refund", {"order_id": str(TOO_BIG)},
                              format="json"), 201)
    assert data["total"] == 600


@pytest.mark.parametrize("url", ["/api/v2/refunds/{n}/", "/api/v2/products/{n}/",
                                 "/api/v2/customers/{n}/", "/api/v2/sales/{n}/"])
def test_ids_in_paths_too_big_for_a_bigint_are_a_404(api, url):
    for n in (str(TOO_BIG), "9" * 40, "%00"):
        response = api.get(url.format(n=n))
        assert response.status_code == 404, (n, response.content)
        assert response.json()["status"] == 404
