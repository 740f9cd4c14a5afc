"""Sales, customers and products through the API: shapes, filters, errors, query counts."""

from __future__ import annotations

import pytest

from sales.models import Product, Sale, StockMove
from tests.factories import CustomerFactory, ProductFactory, SaleFactory

from .conftest import assert_error, assert_ok

pytestmark = pytest.mark.django_db

SALE_BODY = {
    "kind": "invoice", "currency": "GBP", "external_id": "WEB-1001",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"},
    "lines": [{"sku": "MUG-1", "description": "Mug", "quantity": 3, "unit_price": 1200,
               "discount": 0, "tax_rate": "0.20"}],
    "order_discount": 0, "processing_fee": 150, "reseller_fee": 0, "shipping_fee": 499,
    "payments": [{"method": "card", "amount": 4969, "gateway": "sandbox"}],
}

SALE_KEYS = {"id", "number", "external_id", "kind", "channel", "status", "currency", "customer",
             "lines", "processing_fee", "reseller_fee", "shipping_fee", "total", "amount_paid",
             "balance_due", "amount_refunded", "payments", "refunds", "created_at",
             "cancelled_at"}


def test_create_sale_returns_201_and_the_sale(api):
    data = assert_ok(api.post("/api/v2/sales/", SALE_BODY, format="json"), 201, "sale created")
    assert set(data) >= SALE_KEYS
    assert data["total"] == 4969 and data["amount_paid"] == 4969 and data["status"] == "paid"
    assert data["channel"] == "api" and data["customer"]["email"] == "ada@example.com"
    line = data["lines"][0]
    assert {"id", "sku", "description", "quantity", "refunded_quantity", "unit_price",
            "discount", "tax_rate", "net_amount", "tax_amount"} <= set(line)
    assert data["payments"][0]["refunded_amount"] == 0
    assert Sale.objects.get(external_id="WEB-1001").created_by.username == "integration"


def test_create_sale_with_product_id_takes_stock(api):
    product = ProductFactory(price=500, stock=10)
    body = {"lines": [{"product_id": product.pk, "quantity": 4}]}
    data = assert_ok(api.post("/api/v2/sales/", body, format="json"), 201)
    assert data["lines"][0]["unit_price"] == 500
    product.refresh_from_db()
    assert product.stock == 6


def test_invalid_sale_names_the_field_path(api):
    body = {**SALE_BODY, "lines": [SALE_BODY["lines"][0], {"sku": "X", "quantity": 0}]}
    err = assert_error(api.post("/api/v2/sales/", body, format="json"), 400, "invalid")
    assert "lines[1].quantity" in err["errors"]


def test_service_validation_is_400_with_path(api):
    body = {"lines": [{"sku": "UNKNOWN", "quantity": 1}]}
    err = assert_error(api.post("/api/v2/sales/", body, format="json"), 400, "invalid")
    assert "lines[0].unit_price" in err["errors"]


def test_payment_above_total_is_422(api):
    body = {**SALE_BODY, "payments": [{"method": "card", "amount": 99999}]}
    assert_error(api.post("/api/v2/sales/", body, format="json"), 422, "payment_exceeds_balance")


def test_duplicate_external_id_is_409(api):
    SaleFactory(external_id="WEB-1001")
    assert_error(api.post("/api/v2/sales/", SALE_BODY, format="json"), 409,
                 "duplicate_external_id")


def test_malformed_json_is_400(api):
    response = api.generic("POST", "/api/v2/sales/", "{not json", content_type="application/json")
    assert_error(response, 400, "malformed")


def test_fetch_by_id_number_or_external_id(api):
    sale = SaleFactory(external_id="WEB-7")
    for ident in (sale.pk, sale.number, "WEB-7"):
        assert assert_ok(api.get(f"/api/v2/sales/{ident}/"))["id"] == sale.pk


def test_unknown_sale_is_404(api):
    assert_error(api.get("/api/v2/sales/999999/"), 404, "sale_not_found")
    assert_error(api.put("/api/v2/sales/cancel/nope", {}, format="json"), 404, "sale_not_found")


def test_list_filters_and_search(api):
    ada = CustomerFactory(name="Ada Lovelace", email="ada@example.com")
    a = SaleFactory(customer=ada, channel="storefront", external_id="WEB-1")
    b = SaleFactory(paid=False, kind="invoice")
    c = SaleFactory(kind="quote", paid=False)

    def ids(query):
        return {s["id"] for s in assert_ok(api.get(f"/api/v2/sales/?{query}"))}

    assert ids("status=paid") == {a.pk}
    assert ids("status=unpaid&status=quote") == {b.pk, c.pk}
    assert ids("kind=quote") == {c.pk}
    assert ids("channel=storefront") == {a.pk}
    assert ids(f"customer={ada.pk}") == {a.pk}
    assert ids("search=ada@example.com") == {a.pk}
    assert ids("search=Lovelace") == {a.pk}
    assert ids("search=WEB-1") == {a.pk}
    assert ids(f"search={b.number}") == {b.pk}
    assert ids("created_after=2000-01-01T00:00:00Z") == {a.pk, b.pk, c.pk}
    assert ids("created_before=2000-01-01T00:00:00Z") == set()
    assert_error(api.get("/api/v2/sales/?status=bogus"), 400, "invalid")


def test_list_is_paginated(api):
    for _ in range(3):
        SaleFactory()
    response = api.get("/api/v2/sales/?page_size=2")
    body = response.json()
    assert len(body["data"]) == 2
    assert body["pagination"]["count"] == 3 and body["pagination"]["pages"] == 2
    assert body["pagination"]["next"]
    assert_error(api.get("/api/v2/sales/?page=9"), 404, "not_found")


def test_sale_list_page_of_100_is_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    for _ in range(100):
        SaleFactory(lines=[(1, 100), (2, 50)])
    api.get("/api/v2/sales/")  # first use of the key records last_used_at
    with django_assert_max_num_queries(6):
        response = api.get("/api/v2/sales/?page_size=100")
    assert len(response.json()["data"]) == 100


def test_sale_fetch_is_at_most_six_queries(api, django_assert_max_num_queries):
    sale = SaleFactory(lines=[(3, 1200), (2, 500), (1, 99)])
    api.post(f"/api/v2/sales/{sale.pk}/refunds/", {"items": [
        {"item_id": sale.lines.first().pk, "quantity": 1}]}, format="json")
    with django_assert_max_num_queries(6):
        data = assert_ok(api.get(f"/api/v2/sales/{sale.external_id or sale.pk}/"))
    assert len(data["lines"]) == 3 and len(data["refunds"]) == 1


def test_patch_edits_lines_while_nothing_is_paid(api):
    sale = SaleFactory(paid=False, lines=[(1, 1000)])
    body = {"lines": [{"sku": "A", "description": "A", "quantity": 2, "unit_price": 300,
                       "tax_rate": "0"}], "shipping_fee": 100}
    data = assert_ok(api.patch(f"/api/v2/sales/{sale.pk}/", body, format="json"), 200,
                     "sale updated")
    assert data["total"] == 700 and len(data["lines"]) == 1 and data["number"] == sale.number


def test_patch_quote_to_invoice_takes_stock(api):
    product = ProductFactory(stock=10, price=100)
    sale = SaleFactory(kind="quote", paid=False, lines=[(3, 100)], product=product)
    product.refresh_from_db()
    assert product.stock == 10
    data = assert_ok(api.patch(f"/api/v2/sales/{sale.pk}/", {"kind": "invoice"}, format="json"))
    assert data["kind"] == "invoice" and data["status"] == "unpaid"
    product.refresh_from_db()
    assert product.stock == 7


def test_patch_after_payment_is_refused(api, paid_sale):
    assert_error(api.patch(f"/api/v2/sales/{paid_sale.pk}/", {"shipping_fee": 1}, format="json"),
                 422, "sale_not_editable")


def test_balance_records_a_payment_put_and_post(api):
    sale = SaleFactory(paid=False, lines=[(1, 1000)], tax_rate="0")
    data = assert_ok(api.put(f"/api/v2/sales/balance/{sale.pk}",
                             {"amount": 400, "method": "cash"}, format="json"),
                     200, "payment recorded")
    assert data["status"] == "partially_paid" and data["balance_due"] == 600
    data = assert_ok(api.post(f"/api/v2/sales/balance/{sale.pk}/",
                              {"amount": 600, "method": "card"}, format="json"))
    assert data["status"] == "paid"
    assert_error(api.put(f"/api/v2/sales/balance/{sale.pk}", {"amount": 1, "method": "cash"},
                         format="json"), 422, "payment_exceeds_balance")


def test_balance_on_a_quote_or_cancelled_sale_is_refused(api):
    quote = SaleFactory(kind="quote", paid=False)
    assert_error(api.put(f"/api/v2/sales/balance/{quote.pk}", {"amount": 1, "method": "cash"},
                         format="json"), 422, "sale_is_quote")
    sale = SaleFactory(paid=False)
    api.put(f"/api/v2/sales/cancel/{sale.pk}", {}, format="json")
    assert_error(api.put(f"/api/v2/sales/balance/{sale.pk}", {"amount": 1, "method": "cash"},
                         format="json"), 422, "sale_cancelled")


def test_balance_after_a_refund_is_refused(api, paid_sale):
    api.post(f"/api/v2/sales/{paid_sale.pk}/refunds/", {"items": [
        {"item_id": paid_sale.lines.first().pk, "quantity": 1}]}, format="json")
    assert_error(api.put(f"/api/v2/sales/balance/{paid_sale.pk}", {"amount": 1, "method": "cash"},
                         format="json"), 422, "sale_has_refunds")


def test_products_and_customers_list_fetch_add_edit(api):
    data = assert_ok(api.post("/api/v2/products/", {"sku": "MUG-1", "name": "Mug", "price": 1200,
                                                    "stock": 5}, format="json"), 201)
    assert_ok(api.patch(f"/api/v2/products/{data['id']}/", {"stock": 9}, format="json"))
    assert Product.objects.get(sku="MUG-1").stock == 9
    # The stock set is recorded as moves (audit_books recomputes the stock from them).
    assert list(StockMove.objects.filter(product_id=data["id"]).order_by("pk")
                .values_list("kind", "delta")) == [("opening", 5), ("adjustment", 4)]
    assert [p["sku"] for p in assert_ok(api.get("/api/v2/products/?search=mug"))] == ["MUG-1"]
    assert assert_ok(api.get(f"/api/v2/products/{data['id']}/"))["price"] == 1200
    assert_error(api.post("/api/v2/products/", {"sku": "MUG-1", "name": "x", "price": 1},
                          format="json"), 400, "invalid")
    cust = assert_ok(api.post("/api/v2/customers/", {"name": "Bo", "email": "bo@example.com"},
                              format="json"), 201)
    assert_ok(api.patch(f"/api/v2/customers/{cust['id']}/", {"phone": "123"}, format="json"))
    assert assert_ok(api.get(f"/api/v2/customers/{cust['id']}/"))["phone"] == "123"
    assert len(assert_ok(api.get("/api/v2/customers/?search=bo@"))) == 1
    assert_error(api.get("/api/v2/customers/99999/"), 404, "not_found")
    assert_error(api.delete(f"/api/v2/customers/{cust['id']}/"), 405, "method_not_allowed")


def test_balance_with_an_idempotency_key_records_one_payment(api):
    sale = SaleFactory(paid=False, lines=[(1, 1000)], tax_rate="0")
    url = f"/api/v2/sales/balance/{sale.pk}"
    first = api.put(url, {"amount": 400, "method": "cash"}, format="json",
                    HTTP_IDEMPOTENCY_KEY="pay-1")
    second = api.put(url, {"amount": 400, "method": "cash"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="pay-1")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert sale.payments.count() == 1
    assert_error(api.put(url, {"amount": 500, "method": "cash"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="pay-1"), 422, "idempotency_key_reused")


def test_patch_of_a_cancelled_sale_is_refused(api):
    sale = SaleFactory(paid=False)
    api.put(f"/api/v2/sales/cancel/{sale.pk}", {}, format="json")
    assert_error(api.patch(f"/api/v2/sales/{sale.pk}/", {"shipping_fee": 1}, format="json"),
                 422, "sale_cancelled")
