"""Keepup's dialect (/compat/keepup/v2.0/sales/refund|cancel/{sale_id}): the seed's own
requests, its bodies, the same books as the native calls, its refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from refunds.models import CustomerAlert, Refund, RefundLine, RefundPayment
from sales.models import Payment, Product, Sale, SaleCancellation, SaleLine
from tests.api.conftest import key_client
from tests.factories import CustomerFactory, ProductFactory, SaleFactory
from tests.snapshot import db_state

BASE = "/compat/keepup/v2.0/sales"
REFUNDED = {"status": 200, "message": "sale refunded", "data": {"status": "refunded"}}
CANCELLED = {"status": 200, "message": "sale cancelled", "data": {"status": "cancelled"}}
AUTH_INVALID = {"status": 401, "error": "Authentication invalid"}

# Keepup's Python sample (keepup-refund-sale.txt), as the document prints it; the test
# replaces only the host and the placeholders.
KEEPUP_PYTHON_SAMPLE = '''import requests
import json

url = "https://api.keepup.store/v2.0/sales/refund/{sale_id}"
payload = json.dumps({
  "alert_customer": "yes",
})
headers = {
  'Content-Type': 'application/json',
  'Authorization': 'Bearer {access_token}'
}

response = requests.request("POST", url, headers=headers, data=payload)

print(response.text)
'''

# What a sale's refund or cancel moved, less ids, numbers and timestamps: lines and
# payments by their position in the sale, so two sales made alike compare equal.
_NOT_COMPARED = {"number", "external_id", "idempotency_key", "request_hash",
                 "gateway_reference", "gateway_key", "sku", "name"}


def _row(obj, positions: dict[str, dict[int, int]]) -> dict:
    row = {}
    for field in obj._meta.concrete_fields:
        name = field.attname
        if field.primary_key or name.endswith("_at") or name in _NOT_COMPARED:
            continue
        value = getattr(obj, name)
        if name in positions:
            value = positions[name].get(value)
        elif name.endswith("_id") and name not in ("created_by_id", "api_key_id",
                                                   "cancelled_by_id"):
            continue  # the sale, the refund, the customer: the same by construction
        row[name] = value
    return row


def sale_books(sale: Sale) -> dict[str, list[dict]]:
    """Every row a refund or cancel of `sale` writes or moves, comparable across sales."""
    sale.refresh_from_db()
    lines = list(SaleLine.objects.filter(sale=sale).order_by("pk"))
    payments = list(Payment.objects.filter(sale=sale).order_by("pk"))
    positions = {"sale_line_id": {x.pk: i for i, x in enumerate(lines)},
                 "payment_id": {x.pk: i for i, x in enumerate(payments)}}
    refunds = list(Refund.objects.filter(sale=sale).order_by("pk"))
    product_ids = {line.product_id for line in lines if line.product_id}
    return {
        "sale": [_row(sale, positions)],
        "lines": [_row(x, positions) for x in lines],
        "payments": [_row(x, positions) for x in payments],
        "refunds": [_row(x, positions) for x in refunds],
        "refund_lines": [_row(x, positions) for x in
                         RefundLine.objects.filter(refund__sale=sale).order_by("pk")],
        "allocations": [_row(x, positions) for x in
                        RefundPayment.objects.filter(refund__sale=sale).order_by("pk")],
        "alerts": [_row(x, positions) for x in
                   CustomerAlert.objects.filter(sale=sale).order_by("pk")],
        "stock": [_row(x, positions) for x in
                  Product.objects.filter(pk__in=product_ids).order_by("pk")],
        "customer": [{"store_balance": sale.customer.store_balance}] if sale.customer_id else [],
        "cancellation": [_row(x, positions) for x in
                         SaleCancellation.objects.filter(sale=sale)],
    }


def twin_sales(**kwargs) -> tuple[Sale, Sale]:
    """Two sales made alike (same customer, each its own product with the same stock)."""
    customer = CustomerFactory()
    return tuple(  # type: ignore[return-value]
        SaleFactory(customer=customer, product=ProductFactory(stock=10), **kwargs)
        for _ in range(2)
    )


def assert_keepup_error(response, status: int, code: str | None = None) -> dict:
    """Keepup's error body: {"status", "error"} (+ the native `code` and `errors`)."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    if code is not None:
        assert body["code"] == code, body
    return body


# --- the seed's samples, and the same books as the native calls ---------------------

@pytest.mark.parametrize("method", ["post", "put"])
def test_keepup_refund_sample_answers_the_seed_body_and_moves_the_books_as_native(
        keepup_api, method):
    mine, native = twin_sales(lines=[(3, 1200), (1, 500)], processing_fee=150,
                              reseller_fee=50, shipping_fee=499)
    response = getattr(keepup_api, method)(f"{BASE}/refund/{mine.pk}",
                                           json.dumps({"alert_customer": "yes"}),
                                           content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == REFUNDED
    twin = keepup_api.put(f"/api/v2/sales/refund/{native.pk}", {"alert_customer": "yes"},
                          format="json")
    assert twin.status_code == 200, twin.content
    assert sale_books(mine) == sale_books(native)
    assert Refund.objects.get(sale=mine).source == "api"
    assert CustomerAlert.objects.filter(sale=mine).exists()  # "yes" was heard


@pytest.mark.parametrize("method", ["post", "put"])
def test_keepup_cancel_sample_answers_the_seed_body_and_moves_the_books_as_native(
        keepup_api, method):
    mine, native = twin_sales(lines=[(2, 1000)], processing_fee=100)
    response = getattr(keepup_api, method)(f"{BASE}/cancel/{mine.pk}",
                                           {"alert_customer": "yes"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == CANCELLED
    keepup_api.put(f"/api/v2/sales/cancel/{native.pk}", {"alert_customer": "yes"},
                   format="json")
    assert sale_books(mine) == sale_books(native)
    mine.refresh_from_db()
    assert mine.status == "cancelled" and mine.cancellation.source == "api"


def test_keepup_body_is_optional_and_alert_defaults_to_no(keepup_api):
    sale = SaleFactory()
    response = keepup_api.post(f"{BASE}/refund/{sale.pk}")
    assert response.json() == REFUNDED
    assert not CustomerAlert.objects.filter(sale=sale).exists()
    assert keepup_api.post(f"{BASE}/refund/{SaleFactory().pk}", {"alert_customer": "no"},
                           format="json").json() == REFUNDED


def test_keepup_names_a_sale_by_external_id_too(keepup_api):
    sale = SaleFactory(external_id="KU-77")
    assert keepup_api.post(f"{BASE}/refund/KU-77").json() == REFUNDED
    sale.refresh_from_db()
    assert sale.status == "refunded"


def test_keepup_again_on_a_refunded_or_cancelled_sale_is_200_and_nothing_more(keepup_api):
    refunded, cancelled = SaleFactory(), SaleFactory()
    keepup_api.post(f"{BASE}/refund/{refunded.pk}", {"alert_customer": "yes"}, format="json")
    keepup_api.post(f"{BASE}/cancel/{cancelled.pk}", {"alert_customer": "yes"}, format="json")
    before = db_state()
    assert keepup_api.post(f"{BASE}/refund/{refunded.pk}", {"alert_customer": "yes"},
                           format="json").json() == REFUNDED
    assert keepup_api.put(f"{BASE}/cancel/{cancelled.pk}", {"alert_customer": "yes"},
                          format="json").json() == CANCELLED
    assert db_state() == before  # no second refund, no second alert
    assert Refund.objects.filter(sale=refunded).count() == 1
    # One alert per event (email and SMS: the customer has both), not two events.
    assert CustomerAlert.objects.filter(sale__in=[refunded, cancelled]).count() == 4


def test_keepup_idempotency_key_replays_the_first_answer(keepup_api):
    sale = SaleFactory()
    first = keepup_api.post(f"{BASE}/refund/{sale.pk}", HTTP_IDEMPOTENCY_KEY="ku-1")
    again = keepup_api.post(f"{BASE}/refund/{sale.pk}", HTTP_IDEMPOTENCY_KEY="ku-1")
    assert first.json() == again.json() == REFUNDED
    assert again["Idempotent-Replayed"] == "true"
    assert Refund.objects.filter(sale=sale).count() == 1


# --- Keepup's Python sample code, run as it is against a live server ------------------

def run_python(code: str) -> dict:
    """Run a sample as a script of its own (the project's interpreter, which has
    `requests`), and read what it printed."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    return json.loads(run.stdout)


@pytest.mark.parametrize(("action", "answer", "event"), [
    ("refund", REFUNDED, "sale_refunded"), ("cancel", CANCELLED, "sale_cancelled")])
@pytest.mark.django_db(transaction=True)
def test_keepup_python_sample_runs_as_it_is_against_a_live_server(
        live_server, keepup_key, action, answer, event):
    # keepup-cancel-sale.md's Python sample is keepup-refund-sale.txt's with /cancel/.
    sample = KEEPUP_PYTHON_SAMPLE.replace("/sales/refund/", f"/sales/{action}/")
    sale = SaleFactory(lines=[(2, 1500)])
    code = (sample
            .replace("https://api.keepup.store", f"{live_server.url}/compat/keepup")
            .replace("{sale_id}", str(sale.pk))
            .replace("{access_token}", keepup_key))
    assert run_python(code) == answer
    sale.refresh_from_db()
    assert sale.status == answer["data"]["status"]
    assert sale.amount_refunded == sale.amount_paid
    assert set(CustomerAlert.objects.filter(sale=sale).values_list("event", "channel")) == {
        (event, "email"), (event, "sms")}
    assert run_python(code) == answer  # again: 200, nothing more
    assert CustomerAlert.objects.filter(sale=sale).count() == 2
    # The same sample with a wrong token: Keepup's 401 body, nothing written.
    other = SaleFactory()
    before = db_state()
    bad = code.replace(keepup_key, "wrong.key").replace(f"/{sale.pk}\"", f"/{other.pk}\"")
    assert run_python(bad) == AUTH_INVALID
    assert db_state() == before


# --- refusals, in Keepup's shape ------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {}, {"HTTP_AUTHORIZATION": "Bearer nope.nope"}, {"HTTP_AUTHORIZATION": "Basic abc"},
])
def test_keepup_without_a_good_bearer_key_is_keepups_401(db, headers):
    sale = SaleFactory()
    before = db_state()
    for action in ("refund", "cancel"):
        response = APIClient().post(f"{BASE}/{action}/{sale.pk}", {"alert_customer": "yes"},
                                    format="json", **headers)
        assert response.status_code == 401
        assert response.json() == AUTH_INVALID
    assert db_state() == before


def test_keepup_takes_the_key_as_bearer_only_as_its_document_says(keepup_key):
    sale = SaleFactory()
    response = key_client(keepup_key, header="x-api-key").post(f"{BASE}/refund/{sale.pk}")
    assert response.status_code == 401 and response.json() == AUTH_INVALID
    sale.refresh_from_db()
    assert sale.status == "paid"


def test_keepup_unknown_key_is_refused_by_name_and_nothing_is_written(keepup_api):
    sale = SaleFactory()
    before = db_state()
    for action in ("refund", "cancel"):
        response = keepup_api.post(f"{BASE}/{action}/{sale.pk}",
                                   {"alert_customer": "yes", "restock": "no",
                                    "items": [{"item_id": 1, "quantity": 1}]}, format="json")
        body = assert_keepup_error(response, 400, "unknown_field")
        assert set(body["errors"]) == {"restock", "items"}
    assert db_state() == before


def test_keepup_unknown_query_parameter_is_refused(keepup_api):
    sale = SaleFactory()
    response = keepup_api.post(f"{BASE}/refund/{sale.pk}?alert_customer=yes")
    assert assert_keepup_error(response, 400, "unknown_field")["errors"] == {
        "alert_customer": ["Unknown query parameter: this endpoint does not take it."]}
    sale.refresh_from_db()
    assert sale.status == "paid"


def test_keepup_bad_alert_value_is_a_400(keepup_api):
    sale = SaleFactory()
    body = assert_keepup_error(
        keepup_api.post(f"{BASE}/refund/{sale.pk}", {"alert_customer": "maybe"},
                        format="json"), 400, "invalid")
    assert "alert_customer" in body["errors"]


def test_keepup_unknown_sale_is_a_404(keepup_api):
    before = db_state()
    for action in ("refund", "cancel"):
        assert_keepup_error(keepup_api.post(f"{BASE}/{action}/999999"), 404, "sale_not_found")
        assert_keepup_error(keepup_api.put(f"{BASE}/{action}/NO-SUCH"), 404, "sale_not_found")
    assert db_state() == before


def test_keepup_refusals_of_the_rules_are_422s_and_write_nothing(keepup_api):
    """Keepup names no quantity, so it cannot ask more than is left; what the rules refuse
    is a refund of a cancelled sale and a cancel of a partly refunded one."""
    cancelled, partly = SaleFactory(), SaleFactory(lines=[(3, 1200)])
    keepup_api.post(f"{BASE}/cancel/{cancelled.pk}")
    line = partly.lines.get()
    keepup_api.post(f"/api/v2/sales/{partly.pk}/refunds/",
                    {"items": [{"item_id": line.pk, "quantity": 1}]}, format="json")
    before = db_state()
    assert_keepup_error(keepup_api.post(f"{BASE}/refund/{cancelled.pk}"), 422,
                        "sale_cancelled")
    assert_keepup_error(keepup_api.post(f"{BASE}/cancel/{partly.pk}"), 422,
                        "sale_not_cancellable")
    assert db_state() == before
    partly.refresh_from_db()
    line.refresh_from_db()
    # Counters against the ledger rows.
    assert line.refunded_quantity == sum(RefundLine.objects.filter(sale_line=line)
                                         .values_list("quantity", flat=True)) == 1
    assert partly.amount_refunded == sum(RefundPayment.objects.filter(refund__sale=partly)
                                         .values_list("amount", flat=True))


def test_keepup_needs_the_native_permissions(db):
    from tests.api.conftest import grant, make_key
    from tests.factories import UserFactory

    user = UserFactory(username="viewer", is_staff=False)
    grant(user, "sales.view_sale")
    api = key_client(make_key(user))
    sale = SaleFactory()
    assert_keepup_error(api.post(f"{BASE}/refund/{sale.pk}"), 403, "permission_denied")
    assert_keepup_error(api.post(f"{BASE}/cancel/{sale.pk}"), 403, "permission_denied")
    sale.refresh_from_db()
    assert sale.status == "paid"


def test_keepup_wrong_method_is_a_405_in_keepups_shape(keepup_api):
    assert_keepup_error(keepup_api.get(f"{BASE}/refund/1"), 405, "method_not_allowed")


# --- strict and documented, as every API view -----------------------------------------

def test_keepup_is_in_the_schema_under_its_own_tag(db):
    spec = APIClient().get("/api/v2/schema/?format=json").json()
    for action in ("refund", "cancel"):
        operations = spec["paths"][f"/compat/keepup/v2.0/sales/{action}/{{sale_id}}"]
        assert set(operations) >= {"put", "post"}
        for op in operations.values():
            if not isinstance(op, dict) or "tags" not in op:
                continue
            assert op["tags"] == ["Keepup"]
            assert op["security"] == [{"BearerKeyOnly": []}]
            ok = op["responses"]["200"]["content"]["application/json"]["schema"]
            assert ok["$ref"].endswith("/KeepupSaleResponse")
    assert spec["components"]["schemas"]["KeepupSaleRequestRequest"][
        "additionalProperties"] is False


def test_keepup_is_throttled_as_the_native_api(keepup_api, settings):
    from django.core.cache import cache

    settings.API_THROTTLE_RATES = {"key": "2/minute", "bulk": "2/minute"}
    cache.clear()
    sale = SaleFactory()
    for _ in range(2):
        assert keepup_api.post(f"{BASE}/refund/{sale.pk}").status_code == 200
    response = keepup_api.post(f"{BASE}/refund/{sale.pk}")
    assert_keepup_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    cache.clear()


def test_an_unknown_compat_path_is_a_json_404(client):
    response = client.get("/compat/keepup/v1/sales/refund/1")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["status"] == 404
