"""Nuweb's dialect (POST /compat/nuweb/v1/orders/refund): the seed's own request, its
defaults, the same books as the native calls, its refusals in Nuweb's error shape."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from django.db import connection
from rest_framework.test import APIClient

from refunds.models import CustomerAlert, Refund, RefundPayment
from sales.models import Payment
from tests.api.conftest import grant, key_client, make_key
from tests.books import assert_books_balance
from tests.factories import CustomerFactory, SaleFactory, UserFactory
from tests.snapshot import db_state

from .test_keepup import sale_books, twin_sales

URL = "/compat/nuweb/v1/orders/refund"

# Nuweb's sample request (nuweb-refund-order.txt), as its curl sends it; only the
# orderId placeholder is replaced.
SEED_BODY = '''
{
  "orderId": 1,
  "restock": true,
  "refundProcessingFee": true,
  "refundResellerFee": true,
  "notifyCustomer": true,
  "online": true
}
'''
SEED_RESPONSE_KEYS = {"currencyId", "currencySymbol", "currencyCode", "refundValue", "order"}


# The same, as Nuweb's document prints the whole command.
SEED_CURL = """curl --request POST \\
  --url https://api.nuwebgroup.com/v1/orders/refund \\
  --header 'Authorization: Bearer <token>' \\
  --header 'Content-Type: application/json' \\
  --data '""" + SEED_BODY + "'\n"


def seed_request(api, order_id):
    body = SEED_BODY.replace('"orderId": 1', f'"orderId": {order_id}')
    return api.post(URL, body, content_type="application/json")


def nuweb(api, **body):
    return api.post(URL, body, format="json")


def assert_nuweb_error(response, status: int, code: str) -> dict:
    """Nuweb's error body: {"message", "code", "errors"}, nothing else."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "code", "errors"}, body
    assert isinstance(body["message"], str) and body["message"]
    assert body["code"] == code, body
    assert isinstance(body["errors"], dict)
    return body


def test_nuweb_sample_answers_nuwebs_shape_and_moves_the_books_as_native(nuweb_api):
    mine, native = twin_sales(lines=[(3, 1200), (2, 450)], processing_fee=150,
                              reseller_fee=75, gateway="sandbox")
    response = seed_request(nuweb_api, mine.pk)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == SEED_RESPONSE_KEYS
    assert body["currencyId"] == 826 and body["currencyCode"] == "GBP"
    assert body["currencySymbol"] == "£"
    assert body["refundValue"] == mine.total  # minor units: everything, fees included
    assert body["order"]["id"] == mine.pk and body["order"]["status"] == "refunded"
    twin = nuweb_api.post("/api/v2/orders/refund", {
        "order_id": native.pk, "restock": True, "refund_processing_fee": True,
        "refund_reseller_fee": True, "alert_customer": True, "online": True,
    }, format="json")
    assert twin.status_code == 201, twin.content
    assert sale_books(mine) == sale_books(native)
    refund = Refund.objects.get(sale=mine)
    assert refund.online and refund.source == "api" and refund.alert_customer
    assert_books_balance([mine.pk])


@pytest.mark.django_db(transaction=True)
def test_nuweb_curl_sample_runs_as_it_is_against_a_live_server(live_server, nuweb_key):
    curl = shutil.which("curl")
    assert curl, "curl is needed to run Nuweb's sample as its document prints it"
    sale = SaleFactory(lines=[(2, 1500)], processing_fee=99, gateway="sandbox")
    command = (SEED_CURL
               .replace("https://api.nuwebgroup.com", f"{live_server.url}/compat/nuweb")
               .replace("<token>", nuweb_key)
               .replace('"orderId": 1', f'"orderId": {sale.pk}'))
    run = subprocess.run(["bash", "-c", command],
                         capture_output=True, text=True, timeout=60, check=True)
    body = json.loads(run.stdout)
    assert set(body) == SEED_RESPONSE_KEYS
    assert body["refundValue"] == sale.total and body["order"]["status"] == "refunded"
    assert_books_balance([sale.pk])


def test_nuweb_flags_default_to_true_as_its_document_says(nuweb_api):
    mine, native = twin_sales(lines=[(2, 1000)], processing_fee=100, reseller_fee=40)
    assert nuweb(nuweb_api, orderId=mine.pk).status_code == 200
    # The native defaults differ on one point: alert_customer is false there.
    nuweb_api.post(f"/api/v2/sales/{native.pk}/refunds/", {"alert_customer": True},
                   format="json")
    assert sale_books(mine) == sale_books(native)
    refund = Refund.objects.get(sale=mine)
    assert refund.restock and refund.refund_processing_fee and refund.refund_reseller_fee
    assert refund.processing_fee == 100 and refund.reseller_fee == 40
    assert CustomerAlert.objects.filter(sale=mine, refund=refund).exists()


def test_nuweb_false_flags_are_heard(nuweb_api):
    mine, native = twin_sales(lines=[(2, 1000)], processing_fee=100, reseller_fee=40)
    response = nuweb(nuweb_api, orderId=mine.pk, restock=False, refundProcessingFee=False,
                     refundResellerFee=False, notifyCustomer=False, online=False)
    assert response.status_code == 200, response.content
    assert response.json()["refundValue"] == mine.total - 140
    nuweb_api.post(f"/api/v2/sales/{native.pk}/refunds/", {
        "restock": False, "refund_processing_fee": False, "refund_reseller_fee": False,
        "alert_customer": False, "online": False}, format="json")
    assert sale_books(mine) == sale_books(native)
    refund = Refund.objects.get(sale=mine)
    assert (refund.processing_fee, refund.reseller_fee, refund.restock) == (0, 0, False)
    assert not CustomerAlert.objects.filter(sale=mine).exists()
    mine.refresh_from_db()
    assert mine.status == "partially_refunded"  # the fees are still there to give back


def test_nuweb_online_falls_back_to_offline_without_a_gateway(nuweb_api):
    sale = SaleFactory(gateway="")
    assert nuweb(nuweb_api, orderId=sale.pk, online=True).status_code == 200
    refund = Refund.objects.get(sale=sale)
    assert not refund.online and refund.status == "succeeded"


def test_nuweb_order_id_may_be_an_external_id(nuweb_api):
    sale = SaleFactory(external_id="BASKET-9")
    assert nuweb(nuweb_api, orderId="BASKET-9").json()["order"]["id"] == sale.pk


def test_nuweb_cancellation_cancels_the_sale_as_native(nuweb_api):
    mine, native = twin_sales(lines=[(2, 1000)], processing_fee=100)
    response = nuweb(nuweb_api, orderId=mine.pk, type="cancellation", uuid="ignored-1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["refundValue"] == mine.amount_paid
    assert body["order"]["status"] == "cancelled"
    nuweb_api.put(f"/api/v2/sales/cancel/{native.pk}", {"alert_customer": True},
                  format="json")
    assert sale_books(mine) == sale_books(native)
    # Again: 200, nothing more (Nuweb ignores uuid for cancellations: nothing to replay).
    before = db_state()
    again = nuweb(nuweb_api, orderId=mine.pk, type="cancellation")
    assert again.status_code == 200 and again.json()["refundValue"] == 0
    assert db_state() == before


def test_nuweb_cancellation_of_an_unpaid_order_gives_back_nothing(nuweb_api):
    sale = SaleFactory(paid=False)
    response = nuweb(nuweb_api, orderId=sale.pk, type="cancellation", notifyCustomer=False)
    assert response.json()["refundValue"] == 0
    assert response.json()["order"]["status"] == "cancelled"


def test_nuweb_balance_refund_credits_the_customer(nuweb_api):
    customer = CustomerFactory()
    sale = SaleFactory(customer=customer, gateway="sandbox")
    response = nuweb(nuweb_api, orderId=sale.pk, type="balance_refund", online=True)
    assert response.status_code == 200, response.content
    customer.refresh_from_db()
    assert customer.store_balance == sale.total == response.json()["refundValue"]
    assert not Refund.objects.get(sale=sale).online


def test_nuweb_uuid_returns_the_earlier_transaction(nuweb_api):
    sale = SaleFactory()
    first = nuweb(nuweb_api, orderId=sale.pk, uuid="0b6f3c1e-6f4e-4f7a-9a59-3f4c2a1d9e10")
    before = db_state()
    again = nuweb(nuweb_api, orderId=sale.pk, uuid="0b6f3c1e-6f4e-4f7a-9a59-3f4c2a1d9e10")
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert db_state() == before
    # The same uuid for another request: refused, as the native API refuses a reused key.
    other = SaleFactory()
    assert_nuweb_error(nuweb(nuweb_api, orderId=other.pk,
                             uuid="0b6f3c1e-6f4e-4f7a-9a59-3f4c2a1d9e10"),
                       422, "idempotency_key_reused")


def test_nuweb_uuid_must_be_text(nuweb_api):
    sale = SaleFactory()
    body = assert_nuweb_error(nuweb(nuweb_api, orderId=sale.pk, uuid=True), 400, "invalid")
    assert "uuid" in body["errors"]


# --- refundSplits: amount per payment method ----------------------------------------

def _split_sale():
    """4000 charged (incl. tax), paid 3000 by card (sandbox) and 1000 cash."""
    sale = SaleFactory(lines=[(1, 4000)], tax_rate="0", payments=[
        {"amount": 3000, "method": "card", "gateway": "sandbox"},
        {"amount": 1000, "method": "cash"}])
    return sale, list(Payment.objects.filter(sale=sale).order_by("pk"))


# A Nuweb refund's queries, whatever the number of payments: PostgreSQL writes a refund
# in one statement (refunds/services/write_pg.py); SQLite takes the ORM's statements.
REFUND_QUERIES = {"postgresql": 10, "sqlite": 21}


def test_nuweb_refund_splits_name_payment_methods(nuweb_api, django_assert_max_num_queries):
    sale, (card, cash) = _split_sale()
    response = nuweb(nuweb_api, orderId=sale.pk, refundSplits=[
        {"paymentMethod": "cash", "amount": 2500}, {"paymentMethod": "card", "amount": 1500}])
    assert response.status_code == 422, response.content  # cash was only 1000
    body = assert_nuweb_error(response, 422, "split_exceeds_payment")
    assert set(body["errors"]) == {"refundSplits[0].amount"}
    # The translation reads the sale's payments once, whatever their number: the request
    # costs what the native refund does (auth, sale, lock, writes, the order rendered).
    with django_assert_max_num_queries(REFUND_QUERIES[connection.vendor]):
        response = nuweb(nuweb_api, orderId=sale.pk, refundSplits=[
            {"paymentMethod": "cash", "amount": 1000}, {"paymentMethod": "card", "amount": 3000}])
    assert response.status_code == 200, response.content
    allocations = {a.payment_id: a.amount for a in RefundPayment.objects.filter(refund__sale=sale)}
    assert allocations == {card.pk: 3000, cash.pk: 1000}
    assert_books_balance([sale.pk])


def test_nuweb_without_splits_refunds_each_payment_in_proportion(nuweb_api):
    sale, (card, cash) = _split_sale()
    assert nuweb(nuweb_api, orderId=sale.pk).status_code == 200
    allocations = {a.payment_id: a.amount for a in RefundPayment.objects.filter(refund__sale=sale)}
    assert allocations == {card.pk: 3000, cash.pk: 1000}


def test_nuweb_split_over_two_payments_of_one_method_goes_in_proportion(
        nuweb_api, django_assert_max_num_queries):
    sale = SaleFactory(lines=[(1, 4000)], tax_rate="0", payments=[
        {"amount": 1000, "method": "card"}, {"amount": 2000, "method": "card"},
        {"amount": 1000, "method": "cash"}])
    first, second, cash = Payment.objects.filter(sale=sale).order_by("pk")
    with django_assert_max_num_queries(REFUND_QUERIES[connection.vendor]):  # 3 payments = 2
        response = nuweb(nuweb_api, orderId=sale.pk, refundSplits=[
            {"paymentMethod": "card", "amount": 3000}, {"paymentMethod": "cash", "amount": 1000}])
    assert response.status_code == 200, response.content
    allocations = {a.payment_id: a.amount for a in RefundPayment.objects.filter(refund__sale=sale)}
    assert allocations == {first.pk: 1000, second.pk: 2000, cash.pk: 1000}
    assert_books_balance([sale.pk])


def test_nuweb_split_refusals_name_nuwebs_fields(nuweb_api):
    sale, _ = _split_sale()
    before = db_state()
    body = assert_nuweb_error(nuweb(nuweb_api, orderId=sale.pk, refundSplits=[
        {"paymentMethod": "wallet", "amount": 4000}]), 422, "unknown_payment")
    assert set(body["errors"]) == {"refundSplits[0].paymentMethod"}
    body = assert_nuweb_error(nuweb(nuweb_api, orderId=sale.pk, refundSplits=[
        {"paymentMethod": "card", "amount": 100}]), 422, "split_mismatch")
    assert set(body["errors"]) == {"refundSplits"}
    body = assert_nuweb_error(nuweb(nuweb_api, orderId=sale.pk, refundSplits=[
        {"paymentMethod": "card", "amount": 1}, {"paymentMethod": "card", "amount": 2}]),
        400, "invalid")
    assert set(body["errors"]) == {"refundSplits"}
    assert db_state() == before


def test_nuweb_cancellation_refuses_what_it_cannot_honour(nuweb_api):
    sale = SaleFactory(processing_fee=100)
    before = db_state()
    body = assert_nuweb_error(nuweb(nuweb_api, orderId=sale.pk, type="cancellation",
                                    refundProcessingFee=False,
                                    refundSplits=[{"paymentMethod": "card", "amount": 1}]),
                              400, "invalid")
    assert set(body["errors"]) == {"refundProcessingFee", "refundSplits"}
    assert db_state() == before


# --- refusals, in Nuweb's shape --------------------------------------------------------

def test_nuweb_unknown_key_is_refused_by_name_and_nothing_is_written(nuweb_api):
    sale = SaleFactory()
    before = db_state()
    body = assert_nuweb_error(nuweb(nuweb_api, orderId=sale.pk, lineItems=[{"itemId": 1}],
                                    refundSplits=[{"paymentMethod": "card", "amount": 1,
                                                   "paymentId": 3}]),
                              400, "unknown_field")
    assert set(body["errors"]) == {"lineItems", "refundSplits[0].paymentId"}
    assert db_state() == before


def test_nuweb_unknown_query_parameter_is_refused(nuweb_api):
    sale = SaleFactory()
    response = nuweb_api.post(f"{URL}?orderId={sale.pk}", {"orderId": sale.pk}, format="json")
    assert set(assert_nuweb_error(response, 400, "unknown_field")["errors"]) == {"orderId"}
    assert not Refund.objects.exists()


def test_nuweb_unknown_order_is_a_404(nuweb_api):
    before = db_state()
    assert_nuweb_error(nuweb(nuweb_api, orderId=999999), 404, "sale_not_found")
    assert_nuweb_error(nuweb(nuweb_api, orderId="NO-SUCH", type="cancellation"), 404,
                       "sale_not_found")
    assert_nuweb_error(nuweb(nuweb_api), 400, "invalid")  # no orderId at all
    assert db_state() == before


def test_nuweb_nothing_left_to_refund_is_a_422(nuweb_api):
    """Nuweb names no quantity, so it cannot ask more than is left: what is left of a sale
    refunded in full is nothing."""
    sale = SaleFactory()
    nuweb(nuweb_api, orderId=sale.pk)
    before = db_state()
    assert_nuweb_error(nuweb(nuweb_api, orderId=sale.pk), 422, "nothing_to_refund")
    assert db_state() == before
    assert_books_balance([sale.pk])


@pytest.mark.parametrize("headers", [{}, {"HTTP_AUTHORIZATION": "Bearer nope.nope"}])
def test_nuweb_without_a_good_key_is_a_401(db, headers):
    sale = SaleFactory()
    before = db_state()
    response = APIClient().post(URL, {"orderId": sale.pk}, format="json", **headers)
    body = assert_nuweb_error(response, 401, "unauthenticated")
    assert body["message"] == "Authentication invalid"
    assert db_state() == before


def test_nuweb_takes_the_key_as_bearer_only(nuweb_key):
    sale = SaleFactory()
    response = nuweb(key_client(nuweb_key, header="x-api-key"), orderId=sale.pk)
    assert_nuweb_error(response, 401, "unauthenticated")
    assert not Refund.objects.exists()


def test_nuweb_cancellation_needs_the_cancel_permission(db):
    user = UserFactory(username="refunder", is_staff=False)
    grant(user, "refunds.add_refund")
    api = key_client(make_key(user))
    sale = SaleFactory()
    assert_nuweb_error(nuweb(api, orderId=sale.pk, type="cancellation"), 403,
                       "permission_denied")
    sale.refresh_from_db()
    assert sale.status == "paid"
    assert nuweb(api, orderId=sale.pk).status_code == 200


def test_nuweb_malformed_json_is_a_400(nuweb_api):
    response = nuweb_api.post(URL, "{not json", content_type="application/json")
    assert_nuweb_error(response, 400, "malformed")


def test_nuweb_is_in_the_schema_under_its_own_tag(db):
    spec = APIClient().get("/api/v2/schema/?format=json").json()
    op = spec["paths"][URL]["post"]
    assert op["tags"] == ["Nuweb"]
    assert op["security"] == [{"BearerKeyOnly": []}]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/NuwebOrderRefundResponse")
    for status in ("400", "401", "404", "422"):
        error = op["responses"][status]["content"]["application/json"]["schema"]
        assert error["$ref"].endswith("/NuwebError"), status
    components = spec["components"]["schemas"]
    assert components["NuwebRefundRequestRequest"]["additionalProperties"] is False
    assert set(components["NuwebOrderRefundResponse"]["properties"]) == SEED_RESPONSE_KEYS


def test_nuweb_is_throttled_as_the_native_api(nuweb_api, settings):
    from django.core.cache import cache

    settings.API_THROTTLE_RATES = {"key": "1/minute", "bulk": "1/minute"}
    cache.clear()
    sale = SaleFactory()
    assert nuweb(nuweb_api, orderId=sale.pk).status_code == 200
    before = db_state()
    response = nuweb(nuweb_api, orderId=SaleFactory().pk)
    assert_nuweb_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert len(db_state()["refunds.Refund"]) == len(before["refunds.Refund"])
    cache.clear()


def test_nuweb_uuid_replays_a_split_refund_after_the_payments_moved(nuweb_api):
    sale, _ = _split_sale()
    body = {"orderId": sale.pk, "uuid": "split-1", "refundSplits": [
        {"paymentMethod": "card", "amount": 3000}, {"paymentMethod": "cash", "amount": 1000}]}
    first = nuweb(nuweb_api, **body)
    assert first.status_code == 200, first.content
    before = db_state()
    again = nuweb(nuweb_api, **body)  # nothing is left on the payments now: still a replay
    assert again.status_code == 200 and again.json() == first.json()
    assert db_state() == before
    assert_books_balance([sale.pk])
