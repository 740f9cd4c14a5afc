"""Cancel, refund (in full, by line, by order id), preview, list; every error code;
idempotency through the API."""

from __future__ import annotations

import pytest

from backoffice.models import IdempotencyKey
from refunds.models import CustomerAlert, Refund
from sales.models import Sale
from tests.factories import ProductFactory, SaleFactory

from .conftest import assert_error, assert_ok

pytestmark = pytest.mark.django_db

REFUND_KEYS = {"id", "sale_id", "type", "status", "currency", "lines", "fees", "total",
               "payments", "restock", "alert_customer", "reason", "batch_id", "returned_date",
               "source", "created_by", "created_at"}


def refund_url(sale) -> str:
    return f"/api/v2/sales/{sale.pk}/refunds/"


def one(sale, qty=1, **extra):
    return {"items": [{"item_id": sale.lines.first().pk, "quantity": qty}], **extra}


def test_partial_refund_returns_201_and_the_refund(api, paid_sale):
    line = paid_sale.lines.first()
    body = {"items": [{"item_id": line.pk, "quantity": 1}], "restock": True,
            "alert_customer": "yes", "reason": "damaged", "note": "cracked in transit",
            "batch_id": "B-1", "returned_date": "2026-11-20"}
    data = assert_ok(api.post(refund_url(paid_sale), body, format="json"), 201, "refund created")
    assert set(data) >= REFUND_KEYS
    assert data["lines"] == [{"item_id": line.pk, "quantity": 1, "amount": 1200,
                              "tax_amount": 240}]
    assert data["total"] == 1440 and data["fees"] == {"processing": 0, "reseller": 0,
                                                      "shipping": 0}
    assert data["payments"][0]["amount"] == 1440
    assert data["alert_customer"] is True and data["reason"] == "damaged"
    assert data["source"] == "api" and data["created_by"] == "integration"
    assert data["returned_date"].startswith("2026-11-20")
    line.refresh_from_db()
    assert line.refunded_quantity == 1
    assert CustomerAlert.objects.filter(refund_id=data["id"]).exists()


@pytest.mark.parametrize("value,expected", [("yes", True), ("no", False), (True, True),
                                            (False, False), ("YES", True)])
def test_alert_customer_accepts_yes_no_and_booleans(api, paid_sale, value, expected):
    data = assert_ok(api.post(refund_url(paid_sale), one(paid_sale, alert_customer=value),
                              format="json"), 201)
    assert data["alert_customer"] is expected


def test_alert_customer_rejects_other_values(api, paid_sale):
    err = assert_error(api.post(refund_url(paid_sale), one(paid_sale, alert_customer="maybe"),
                                format="json"), 400, "invalid")
    assert "alert_customer" in err["errors"]


def test_empty_items_refunds_everything_that_remains(api):
    sale = SaleFactory(lines=[(2, 1000), (1, 500)], shipping_fee=300)
    data = assert_ok(api.post(refund_url(sale), {"items": []}, format="json"), 201)
    assert data["total"] == sale.total and data["fees"]["shipping"] == 300
    sale.refresh_from_db()
    assert sale.status == "refunded"


def test_more_than_remains_is_422_with_the_field_path(api, paid_sale):
    api.post(refund_url(paid_sale), one(paid_sale, 1), format="json")
    err = assert_error(api.post(refund_url(paid_sale), one(paid_sale, 3), format="json"),
                       422, "refund_quantity_exceeded")
    assert err["errors"] == {"items[0].quantity": ["only 2 left to refund"]}


def test_error_codes_of_the_refund_endpoint(api, paid_sale):
    line = paid_sale.lines.first()
    payment = paid_sale.payments.first()
    url = refund_url(paid_sale)
    cases = [
        ({"items": [{"item_id": 999999, "quantity": 1}]}, 422, "unknown_line"),
        ({"items": [{"item_id": line.pk, "quantity": 0}]}, 400, "invalid"),
        ({"items": [{"item_id": line.pk, "quantity": "x"}]}, 400, "invalid"),
        (one(paid_sale, splits=[{"payment_id": 999999, "amount": 1440}]), 422,
         "unknown_payment"),
        (one(paid_sale, splits=[{"payment_id": payment.pk, "amount": 1}]), 422,
         "split_mismatch"),
        (one(paid_sale, splits=[{"payment_id": payment.pk, "amount": 999999}]), 422,
         "split_exceeds_payment"),
        (one(paid_sale, expected_refunded_amount=5), 409, "stale_refund_state"),
        (one(paid_sale, reason="bored"), 400, "invalid"),
        (one(paid_sale, type="cancellation"), 400, "invalid"),
    ]
    for body, status, code in cases:
        assert_error(api.post(url, body, format="json"), status, code)
    assert not Refund.objects.exists()
    # In the error's field path: items[1].
    err = assert_error(api.post(url, {"items": [{"item_id": line.pk, "quantity": 1},
                                                {"item_id": line.pk, "quantity": -1}]},
                                format="json"), 400, "invalid")
    assert "items[1].quantity" in err["errors"]


def test_expected_refunded_amount_that_matches_goes_through(api, paid_sale):
    assert_ok(api.post(refund_url(paid_sale), one(paid_sale, expected_refunded_amount=0),
                       format="json"), 201)
    assert_error(api.post(refund_url(paid_sale), one(paid_sale, expected_refunded_amount=0),
                          format="json"), 409, "stale_refund_state")


def test_refund_of_a_partly_paid_sale_beyond_paid_is_422(api):
    sale = SaleFactory(payments=[{"amount": 100, "method": "cash"}], lines=[(2, 1000)])
    assert_error(api.post(refund_url(sale), {}, format="json"), 422, "refund_exceeds_paid")


def test_refund_of_unpaid_quote_cancelled_and_finished_sales(api):
    unpaid = SaleFactory(paid=False)
    assert_error(api.post(refund_url(unpaid), {}, format="json"), 422, "sale_not_refundable")
    quote = SaleFactory(kind="quote", paid=False)
    assert_error(api.post(refund_url(quote), {}, format="json"), 422, "sale_not_refundable")
    cancelled = SaleFactory()
    api.put(f"/api/v2/sales/cancel/{cancelled.pk}", {}, format="json")
    assert_error(api.post(refund_url(cancelled), {}, format="json"), 422, "sale_cancelled")
    done = SaleFactory()
    api.post(refund_url(done), {}, format="json")
    assert_error(api.post(refund_url(done), {}, format="json"), 422, "nothing_to_refund")


def test_balance_refund_without_customer_is_422(api):
    sale = SaleFactory(with_customer=False)
    assert_error(api.post(refund_url(sale), {"type": "balance_refund"}, format="json"), 422,
                 "no_customer_for_balance")


def test_balance_refund_credits_the_customer(api, paid_sale):
    data = assert_ok(api.post(refund_url(paid_sale), one(paid_sale, type="balance_refund"),
                              format="json"), 201)
    assert data["type"] == "balance_refund"
    paid_sale.customer.refresh_from_db()
    assert paid_sale.customer.store_balance == 1440


def test_online_refund_is_settled_through_the_gateway(api, django_capture_on_commit_callbacks):
    sale = SaleFactory(gateway="sandbox")
    with django_capture_on_commit_callbacks(execute=True):
        data = assert_ok(api.post(refund_url(sale), one(sale), format="json"), 201)
    assert data["online"] is True and data["status"] == "pending"
    assert Refund.objects.get(pk=data["id"]).status == "succeeded"


def test_preview_writes_nothing_and_matches_the_refund(api):
    product = ProductFactory(stock=5)
    sale = SaleFactory(lines=[(3, 1000)], shipping_fee=200, product=product)
    body = one(sale, 3)
    preview = assert_ok(api.post(f"{refund_url(sale)}preview/", body, format="json"), 200,
                        "refund preview")
    assert not Refund.objects.exists()
    product.refresh_from_db()
    assert product.stock == 2
    refund = assert_ok(api.post(refund_url(sale), body, format="json"), 201)
    assert preview["total"] == refund["total"] == sale.total
    assert preview["lines"][0]["amount"] == refund["lines"][0]["amount"]
    assert preview["payments"][0]["amount"] == refund["payments"][0]["amount"]
    assert preview["empties_sale"] is True and preview["fees"]["shipping"] == 200


def test_preview_errors_are_the_refunds_errors(api, paid_sale):
    assert_error(api.post(f"{refund_url(paid_sale)}preview/", one(paid_sale, 9), format="json"),
                 422, "refund_quantity_exceeded")


def test_orders_refund_by_external_id_or_id(api):
    sale = SaleFactory(external_id="WEB-1001", lines=[(2, 1000)])
    data = assert_ok(api.post("/api/v2/orders/refund", {"order_id": "WEB-1001", **one(sale)},
                              format="json"), 201)
    assert data["sale_id"] == sale.pk
    data = assert_ok(api.post("/api/v2/orders/refund", {"order_id": sale.pk, **one(sale)},
                              format="json"), 201)
    assert_error(api.post("/api/v2/orders/refund", {"order_id": "nope"}, format="json"), 404,
                 "sale_not_found")
    assert_error(api.post("/api/v2/orders/refund", {}, format="json"), 400, "invalid")


@pytest.mark.parametrize("method", ["put", "post"])
def test_full_refund_then_again_is_200_and_nothing_more(api, method):
    sale = SaleFactory(shipping_fee=100)
    call = getattr(api, method)
    data = assert_ok(call(f"/api/v2/sales/refund/{sale.pk}", {"alert_customer": "yes"},
                          format="json"), 200, "sale refunded")
    assert data["status"] == "refunded" and data["amount_refunded"] == sale.total
    alerts = CustomerAlert.objects.count()
    again = assert_ok(call(f"/api/v2/sales/refund/{sale.pk}", {"alert_customer": "yes"},
                           format="json"), 200, "sale refunded")
    assert again["status"] == "refunded"
    assert Refund.objects.filter(sale=sale).count() == 1
    assert CustomerAlert.objects.count() == alerts


def test_full_refund_by_external_id_and_of_the_rest(api, paid_sale):
    api.post(refund_url(paid_sale), one(paid_sale), format="json")
    data = assert_ok(api.put(f"/api/v2/sales/refund/{paid_sale.pk}/", {}, format="json"))
    assert data["status"] == "refunded" and data["lines"][0]["refunded_quantity"] == 3


@pytest.mark.parametrize("method", ["put", "post"])
def test_cancel_then_again_is_200_with_no_second_alert(api, method):
    product = ProductFactory(stock=10)
    sale = SaleFactory(lines=[(2, 1000)], product=product)
    call = getattr(api, method)
    body = {"alert_customer": "yes", "reason": "customer", "restock": True}
    data = assert_ok(call(f"/api/v2/sales/cancel/{sale.pk}", body, format="json"), 200,
                     "sale cancelled")
    assert data["status"] == "cancelled" and data["cancelled_at"]
    assert data["amount_refunded"] == sale.total
    alerts = CustomerAlert.objects.filter(sale=sale).count()
    assert alerts >= 1
    again = assert_ok(call(f"/api/v2/sales/cancel/{sale.pk}", body, format="json"), 200,
                      "sale cancelled")
    assert again["status"] == "cancelled"
    assert CustomerAlert.objects.filter(sale=sale).count() == alerts
    product.refresh_from_db()
    assert product.stock == 10


def test_cancel_refusals(api, paid_sale):
    api.post(refund_url(paid_sale), one(paid_sale), format="json")
    assert_error(api.put(f"/api/v2/sales/cancel/{paid_sale.pk}", {}, format="json"), 422,
                 "sale_not_cancellable")
    assert_error(api.put(f"/api/v2/sales/cancel/{paid_sale.pk}", {"reason": "whim"},
                         format="json"), 400, "invalid")


def test_cancel_of_a_fully_refunded_sale_says_so(api, paid_sale):
    assert_ok(api.post(refund_url(paid_sale), {}, format="json"), 201)
    err = assert_error(api.put(f"/api/v2/sales/cancel/{paid_sale.pk}", {}, format="json"),
                       422, "sale_not_cancellable")
    assert "already refunded in full" in err["error"] and "partly" not in err["error"]


def test_cancel_of_a_partly_refunded_sale_says_partly(api, paid_sale):
    assert_ok(api.post(refund_url(paid_sale), one(paid_sale), format="json"), 201)
    err = assert_error(api.put(f"/api/v2/sales/cancel/{paid_sale.pk}", {}, format="json"),
                       422, "sale_not_cancellable")
    assert "already partly refunded" in err["error"]


@pytest.fixture
def two_payments_sale(db):
    """3 x 1200 + 20% tax = 4320, paid 1000 in cash and 3320 by card."""
    return SaleFactory(payments=[{"amount": 1000, "method": "cash"},
                                 {"amount": 3320, "method": "card"}])


@pytest.mark.parametrize("where", ["refunds", "preview", "orders"])
def test_split_errors_are_keyed_by_the_requests_field_path(api, two_payments_sale, where):
    sale = two_payments_sale
    cash, card = sale.payments.order_by("pk")
    url = {"refunds": refund_url(sale), "preview": f"{refund_url(sale)}preview/",
           "orders": "/api/v2/orders/refund"}[where]
    extra = {"order_id": sale.pk} if where == "orders" else {}

    def post(splits):
        return api.post(url, one(sale, splits=splits, **extra), format="json")

    err = assert_error(post([{"payment_id": cash.pk, "amount": 440},
                             {"payment_id": 999999, "amount": 1000}]), 422, "unknown_payment")
    assert err["errors"] == {"splits[1].payment_id": ["Unknown payment."]}
    err = assert_error(post([{"payment_id": card.pk, "amount": 440},
                             {"payment_id": cash.pk, "amount": 1001}]), 422,
                       "split_exceeds_payment")
    assert err["errors"] == {"splits[1].amount": ["At most 1000."]}
    err = assert_error(post([{"payment_id": card.pk, "amount": 1}]), 422, "split_mismatch")
    assert err["errors"] == {"splits": ["Must add up to 1440."]}
    assert not Refund.objects.exists()
    data = assert_ok(post([{"payment_id": card.pk, "amount": 440},
                           {"payment_id": cash.pk, "amount": 1000}]),
                     200 if where == "preview" else 201)
    assert {p["payment_id"]: p["amount"] for p in data["payments"]} == {card.pk: 440,
                                                                      cash.pk: 1000}


def test_refunds_list_filters_and_detail(api, django_assert_max_num_queries):
    a, b = SaleFactory(lines=[(5, 100)]), SaleFactory(lines=[(5, 100)])
    for _ in range(3):
        api.post(refund_url(a), one(a, batch_id="B1"), format="json")
    api.post(refund_url(b), one(b, type="balance_refund"), format="json")

    def ids(query):
        return [r["id"] for r in assert_ok(api.get(f"/api/v2/refunds/?{query}"))]

    assert len(ids("")) == 4
    assert len(ids(f"sale={a.pk}")) == 3
    assert len(ids("batch=B1")) == 3
    assert len(ids("type=balance_refund")) == 1
    assert len(ids("status=succeeded&source=api")) == 4
    assert ids("created_before=2000-01-01T00:00:00Z") == []
    first = ids("")[0]
    data = assert_ok(api.get(f"/api/v2/refunds/{first}/"))
    assert set(data) >= REFUND_KEYS
    assert_error(api.get("/api/v2/refunds/999999/"), 404, "refund_not_found")
    with django_assert_max_num_queries(6):
        small = api.get("/api/v2/refunds/?page_size=2")
    api.post(refund_url(b), {"items": []}, format="json")
    with django_assert_max_num_queries(6):
        big = api.get("/api/v2/refunds/?page_size=100")
    assert len(small.json()["data"]) == 2 and len(big.json()["data"]) == 5


def test_unexpected_error_is_a_logged_json_500(api, paid_sale, monkeypatch, caplog):
    import refunds.api.views as views

    def boom(**kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(views, "refund_create", boom)
    response = api.post(refund_url(paid_sale), one(paid_sale), format="json")
    body = assert_error(response, 500, "server_error")
    assert "kaboom" not in body["error"]
    assert any("Unhandled error" in r.message for r in caplog.records)


def test_unsupported_media_type_is_415(api, paid_sale):
    response = api.post(refund_url(paid_sale), "a=b",
                        content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


# Idempotency through the API -------------------------------------------------------------

def test_same_key_and_body_replays_the_same_status_and_body(api, paid_sale):
    body = one(paid_sale)
    first = api.post(refund_url(paid_sale), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post(refund_url(paid_sale), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert second["Idempotent-Replayed"] == "true"
    assert Refund.objects.count() == 1
    row = IdempotencyKey.objects.get(key="k-1")
    assert row.response_status == 201 and row.refund_id == first.json()["data"]["id"]


def test_same_key_with_another_body_is_422(api, paid_sale):
    api.post(refund_url(paid_sale), one(paid_sale), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert_error(api.post(refund_url(paid_sale), one(paid_sale, 2), format="json",
                          HTTP_IDEMPOTENCY_KEY="k-2"), 422, "idempotency_key_reused")
    assert Refund.objects.count() == 1


def test_uuid_field_is_an_idempotency_key(api, paid_sale):
    body = one(paid_sale, uuid="3f1c7a52-uuid")
    first = api.post("/api/v2/orders/refund", {"order_id": paid_sale.pk, **body}, format="json")
    second = api.post("/api/v2/orders/refund", {"order_id": paid_sale.pk, **body}, format="json")
    assert first.json() == second.json() and second.status_code == 201
    assert Refund.objects.count() == 1


def test_a_refused_request_does_not_burn_its_key(api, paid_sale):
    assert_error(api.post(refund_url(paid_sale), one(paid_sale, 9), format="json",
                          HTTP_IDEMPOTENCY_KEY="k-3"), 422, "refund_quantity_exceeded")
    assert not IdempotencyKey.objects.filter(key="k-3").exists()


def test_cancel_with_a_key_replays(api, paid_sale):
    url = f"/api/v2/sales/cancel/{paid_sale.pk}"
    first = api.put(url, {"reason": "customer"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    second = api.put(url, {"reason": "customer"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert first.json() == second.json()
    assert Sale.objects.get(pk=paid_sale.pk).status == "cancelled"


def test_key_longer_than_255_is_400(api, paid_sale):
    assert_error(api.post(refund_url(paid_sale), one(paid_sale), format="json",
                          HTTP_IDEMPOTENCY_KEY="x" * 256), 400, "invalid")


def test_a_lost_race_at_the_database_is_a_422(api, paid_sale, monkeypatch):
    import refunds.api.views as views
    from backoffice.errors import ConstraintViolationError

    def lost(**kwargs):
        raise ConstraintViolationError("The refund was refused because it would give back "
                                       "more than was bought or paid.")

    monkeypatch.setattr(views, "refund_create", lost)
    assert_error(api.post(refund_url(paid_sale), one(paid_sale), format="json"), 422,
                 "constraint_violation")
