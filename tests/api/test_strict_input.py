"""Strict input: a key or query parameter the API does not understand is a 400
`unknown_field` naming each path, and nothing is written (DESIGN §8)."""

from __future__ import annotations

import importlib
import inspect

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import serializers
from rest_framework.test import APIClient

from backoffice.api.strict import StrictQueryMixin, StrictSerializerMixin
from tests.factories import ProductFactory, SaleFactory
from tests.snapshot import db_state

from .conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def sale(db):
    """2 lines, fees, paid by card: a full refund would give back 6,650."""
    return SaleFactory(lines=[(3, 1200), (2, 500)], processing_fee=150, shipping_fee=500)


def refused(response, *paths: str) -> dict:
    body = assert_error(response, 400, "unknown_field")
    for path in paths:
        assert path in body["errors"], body
        assert "Unknown" in body["errors"][path][0] or "Read-only" in body["errors"][path][0]
        assert path in body["error"]
    assert "nothing was done" in body["error"] or "nothing written" in body["error"]
    return body


def test_foreign_line_items_do_not_refund_the_whole_sale(api, sale):
    """The line-item API's words on the native path: refused, not read as "everything"."""
    line = sale.lines.first()
    before = db_state()
    response = api.post("/api/v2/orders/refund", {
        "order_id": sale.pk, "lineItems": [{"itemId": line.pk, "quantity": 1}]}, format="json")
    refused(response, "lineItems")
    assert db_state() == before


def test_an_amount_is_refused_not_read_as_a_full_refund(api, sale):
    before = db_state()
    refused(api.post(f"/api/v2/sales/{sale.pk}/refunds/", {"amount": 500}, format="json"),
            "amount")
    assert db_state() == before


@pytest.mark.parametrize("body,paths", [
    ({"refundProcessingFee": False}, ["refundProcessingFee"]),
    ({"notifyCustomer": True}, ["notifyCustomer"]),
    ({"batchId": "B1", "returnedDate": "2026-11-20", "refundSplits": []},
     ["batchId", "returnedDate", "refundSplits"]),
])
def test_other_systems_field_names_are_refused(api, sale, body, paths):
    before = db_state()
    refused(api.post(f"/api/v2/sales/{sale.pk}/refunds/", body, format="json"), *paths)
    assert db_state() == before


def test_nested_unknown_keys_are_named_by_path(api, sale):
    line = sale.lines.first()
    payment = sale.payments.first()
    before = db_state()
    body = refused(api.post(f"/api/v2/sales/{sale.pk}/refunds/", {
        "items": [{"item_id": line.pk, "quantity": 1},
                  {"item_id": line.pk, "qty": 1, "price": 100}],
        "splits": [{"payment_id": payment.pk, "amount": 1, "method": "card"}],
    }, format="json"), "items[1].qty", "items[1].price", "splits[0].method")
    assert set(body["errors"]) >= {"items[1].qty", "items[1].price", "splits[0].method"}
    assert db_state() == before


def test_unknown_keys_are_reported_with_the_other_errors(api, sale):
    body = refused(api.post(f"/api/v2/sales/{sale.pk}/refunds/", {
        "reason": "no-such-reason", "colour": "red"}, format="json"), "colour")
    assert "reason" in body["errors"]


def test_a_known_body_still_refunds(api, sale):
    line = sale.lines.first()
    response = api.post(f"/api/v2/sales/{sale.pk}/refunds/", {
        "items": [{"item_id": line.pk, "quantity": 1}], "refund_processing_fee": False},
        format="json")
    assert response.status_code == 201, response.content
    assert response.json()["data"]["total"] == 1440


def _native_requests(sale) -> list[tuple[str, str, object]]:
    line = sale.lines.first()
    product = ProductFactory()
    customer_id = sale.customer_id
    return [
        ("post", f"/api/v2/sales/{sale.pk}/refunds/", {"itemz": []}),
        ("post", f"/api/v2/sales/{sale.pk}/refunds/preview/", {"itemz": []}),
        ("post", "/api/v2/orders/refund", {"order_id": sale.pk, "itemz": []}),
        ("put", f"/api/v2/sales/refund/{sale.pk}", {"alert": "yes"}),
        ("post", f"/api/v2/sales/refund/{sale.pk}", {"alert": "yes"}),
        ("put", f"/api/v2/sales/cancel/{sale.pk}", {"alert": "yes"}),
        ("post", f"/api/v2/sales/cancel/{sale.pk}", {"alert": "yes"}),
        ("put", f"/api/v2/sales/balance/{sale.pk}",
         {"amount": 1, "method": "cash", "note": "x"}),
        ("post", "/api/v2/sales/", {
            "currency": "GBP", "lines": [{"sku": "X", "quantity": 1, "unit_price": 100,
                                          "colour": "red"}]}),
        ("patch", f"/api/v2/sales/{sale.pk}/", {"shipping": 0}),
        ("post", "/api/v2/products/", {"sku": "NEW-1", "name": "New", "price": 100,
                                       "colour": "red"}),
        ("patch", f"/api/v2/products/{product.pk}/", {"colour": "red"}),
        ("post", "/api/v2/customers/", {"name": "Ada", "nickname": "A"}),
        ("patch", f"/api/v2/customers/{customer_id}/", {"store_balance": 10**6}),
        ("post", "/api/v2/refunds/validate",
         [{"id": "r1", "sale_id": sale.pk, "line_items": [{"item_id": line.pk, "quantity": 1,
                                                           "price": 1}]}]),
        ("post", "/api/v2/refunds/json",
         [{"id": "r1", "sale_id": sale.pk, "amount": 5,
           "line_items": [{"item_id": line.pk, "quantity": 1}]}]),
    ]


def test_every_native_write_refuses_an_extra_key_and_writes_nothing(api, sale):
    requests = _native_requests(sale)
    before = db_state()
    for method, url, body in requests:
        response = getattr(api, method)(url, body, format="json")
        assert_error(response, 400, "unknown_field")
        assert db_state() == before, (method, url)


def test_bulk_records_name_the_unknown_path(api, sale):
    line = sale.lines.first()
    records = [{"id": f"r{i}", "sale_id": sale.pk,
                "line_items": [{"item_id": line.pk, "quantity": 1}]} for i in range(4)]
    records[3]["line_items"][0]["price"] = 100
    before = db_state()
    body = refused(api.post("/api/v2/refunds/json", records, format="json"))
    assert body["errors"] == {"[3].line_items[0].price": [
        "Unknown field: this endpoint does not take it."]}
    assert body["records"][0]["index"] == 3
    assert db_state() == before


@pytest.mark.parametrize("url", [
    "/api/v2/sales/?statuss=paid", "/api/v2/refunds/?sale_id=1", "/api/v2/products/?q=x",
    "/api/v2/customers/?name=x", "/api/v2/refunds/status?sorce=bulk",
])
def test_unknown_query_parameters_are_refused(api, url):
    name = url.split("?")[1].split("=")[0]
    body = assert_error(api.get(url), 400, "unknown_field")
    assert name in body["errors"] and "query parameter" in body["error"]


@pytest.mark.parametrize("url", [
    "/api/v2/sales/?status=paid&page=1&page_size=5&format=json&search=x",
    "/api/v2/refunds/?sale=1&status=pending&created_after=2026-01-01T00:00:00Z",
    "/api/v2/refunds/status?source=bulk", "/api/v2/products/?search=x&sku=y",
])
def test_known_query_parameters_still_work(api, url):
    assert api.get(url).status_code == 200


def test_unknown_query_parameter_on_a_write_is_refused(api, sale):
    before = db_state()
    response = api.post(f"/api/v2/sales/{sale.pk}/refunds/?dry_run=1", {}, format="json")
    assert_error(response, 400, "unknown_field")
    assert db_state() == before


def test_unknown_keys_are_refused_before_anything_else_is_asked_of_the_key(sale):
    """Without a key: 401 (nothing about the body leaks to an anonymous caller)."""
    response = APIClient().post(f"/api/v2/sales/{sale.pk}/refunds/", {"x": 1}, format="json")
    assert response.status_code == 401


# Every serializer and view of the API is strict: a new one cannot forget it.

API_MODULES = ["backoffice.api.schema", "refunds.api.serializers", "sales.api.serializers"]


def test_every_api_serializer_refuses_unknown_keys():
    found = []
    for name in API_MODULES:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, serializers.BaseSerializer) and cls.__module__ == name
                    and not issubclass(cls, serializers.ListSerializer)):
                found.append(cls)
                assert issubclass(cls, StrictSerializerMixin), cls
    assert len(found) > 20


def _views(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _views(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            view = getattr(p.callback, "cls", None) or getattr(p.callback, "view_class", None)
            yield prefix + str(p.pattern), view


def test_every_api_view_refuses_unknown_query_parameters():
    checked = 0
    for route, view in _views(get_resolver().url_patterns):
        if not route.startswith(("api/v2/", "compat/")) or view is None:
            continue
        if view.__module__.startswith("drf_spectacular") or view.__name__ == "NoSuchEndpoint":
            continue  # the schema and its docs; the JSON 404 for any other path
        assert issubclass(view, StrictQueryMixin), (route, view)
        checked += 1
    assert checked > 20  # the native API's views and the dialects' (refunds/compat/)


def test_schema_says_request_bodies_take_no_other_keys(db):
    spec = APIClient().get("/api/v2/schema/?format=json").json()
    components = spec["components"]["schemas"]
    requests = {name: c for name, c in components.items() if name.endswith("Request")}
    assert {"RefundRequestRequest", "ItemRequest", "SaleCreateRequest"} <= set(requests)
    for name, component in requests.items():
        if component.get("type") == "object":
            assert component.get("additionalProperties") is False, name
