"""The line-item refund API's dialect (/compat/orders-api/, refund-order-line-items.txt):
the seed's request moves the books exactly as the native refund does; its refusals in
its own shape; the connection id belongs to the key."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from backoffice.models import ApiKey
from refunds.models import Refund
from tests.api.conftest import _api_settings, grant, key_client, make_key  # noqa: F401
from tests.factories import UserFactory
from tests.snapshot import db_state, sale_books

from .twin_sales import integration_user, twin_sale

pytestmark = pytest.mark.django_db

BASE = "/compat/orders-api/connections/{connection}/orders/{order}/refunds"


@pytest.fixture
def orders_user(db):
    return integration_user("orders-integration")


@pytest.fixture
def orders_key(orders_user) -> tuple[ApiKey, str]:
    key = make_key(orders_user, "orders-api")
    return ApiKey.objects.get_from_key(key), key


@pytest.fixture
def orders_client(orders_key) -> APIClient:
    return key_client(orders_key[1])


orders_sale = twin_sale


def url(connection, order) -> str:
    return BASE.format(connection=connection, order=order)


def orders_error(response, status: int, code: str) -> dict:
    """The dialect's error shape: {status, error (the seed's name), code, message, errors}."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "error", "code", "message", "errors"}, body
    assert body["status"] == status and body["code"] == code, body
    assert body["error"].endswith("Error") and body["message"]
    return body


def test_the_seeds_request_moves_the_books_as_the_native_refund(orders_client, orders_key):
    """The seed's fields, host and placeholders replaced; compared with /api/v2/orders/refund."""
    dialect_sale, native_sale = orders_sale(), orders_sale()
    line = dialect_sale.lines.order_by("pk")[0]
    response = orders_client.post(url(orders_key[0].connection_id, dialect_sale.pk), {
        "batchId": "B-2026-11",
        "items": [{"itemId": line.pk, "quantity": 2}],
        "returnedDate": "2026-11-20T10:00:00Z",
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["connectionId"] == str(orders_key[0].connection_id)
    assert body["batchId"] == "B-2026-11"
    assert body["returnedDate"] == "2026-11-20T10:00:00Z"
    assert body["createdDate"]
    # Amounts taken from the order: 2 of 3 mugs at 1200 + 20% tax.
    assert body["items"] == [{"itemId": line.pk, "quantity": 2, "amount": 2400,
                              "taxAmount": 480, "totalAmount": 2880}]
    assert body["totalAmount"] == 2880 and body["orderId"] == str(dialect_sale.pk)

    native_line = native_sale.lines.order_by("pk")[0]
    native = orders_client.post("/api/v2/orders/refund", {
        "order_id": native_sale.pk, "batch_id": "B-2026-11",
        "items": [{"item_id": native_line.pk, "quantity": 2}],
        "returned_date": "2026-11-20T10:00:00Z"}, format="json")
    assert native.status_code == 201, native.content
    assert sale_books(dialect_sale) == sale_books(native_sale)
    assert sale_books(dialect_sale)["lines"][0]["stock"] == 10 - 3 + 2  # restocked


@pytest.mark.parametrize("body", [{}, {"items": []}, {"items": None}, {"batchId": "B1"}])
def test_empty_or_absent_items_refund_everything_left(orders_client, orders_key, body):
    dialect_sale, native_sale = orders_sale(), orders_sale()
    for sale in (dialect_sale, native_sale):  # one mug refunded already
        first = sale.lines.order_by("pk")[0]
        assert orders_client.post(f"/api/v2/sales/{sale.pk}/refunds/", {
            "items": [{"item_id": first.pk, "quantity": 1}]}, format="json").status_code == 201
    response = orders_client.post(url(orders_key[0].connection_id, dialect_sale.external_id
                                      or dialect_sale.number), body, format="json")
    assert response.status_code == 201, response.content
    assert [(i["quantity"]) for i in response.json()["items"]] == [2, 2]
    native = orders_client.post("/api/v2/orders/refund", {
        "order_id": native_sale.pk, **({"batch_id": "B1"} if body.get("batchId") else {})},
        format="json")
    assert native.status_code == 201, native.content
    assert sale_books(dialect_sale) == sale_books(native_sale)
    dialect_sale.refresh_from_db()
    assert dialect_sale.status == "refunded"
    assert response.json()["totalAmount"] == dialect_sale.amount_refunded - 1440


def test_the_x_api_key_header_works_too(orders_key):
    sale = orders_sale()
    response = key_client(orders_key[1], header="x-api-key").post(
        url(orders_key[0].connection_id, sale.pk), {}, format="json")
    assert response.status_code == 201, response.content


def test_another_keys_or_an_unknown_connection_is_a_404(orders_client, orders_user):
    sale = orders_sale()
    other = ApiKey.objects.get_from_key(make_key(orders_user, "other"))
    before = db_state()
    for connection in (other.connection_id, uuid.uuid4(), "not-a-uuid"):
        body = orders_error(orders_client.post(url(connection, sale.pk), {}, format="json"),
                            404, "connection_not_found")
        assert str(connection) in body["message"]
    assert db_state() == before


def test_a_staff_session_has_no_connection(client, orders_key):
    sale = orders_sale()
    client.force_login(UserFactory(username="boss", is_superuser=True, is_staff=True))
    response = client.post(url(orders_key[0].connection_id, sale.pk), {},
                           content_type="application/json")
    orders_error(response, 404, "connection_not_found")


@pytest.mark.parametrize("item_extra,path", [
    ({"price": 1200}, "items[0].price"),
    ({"unitPrice": 1200}, "items[0].unitPrice"),
    ({"taxAmount": 240}, "items[0].taxAmount"),
    ({"tax": 240}, "items[0].tax"),
])
def test_a_price_or_tax_field_is_refused_with_the_seeds_reason(orders_client, orders_key,
                                                               item_extra, path):
    sale = orders_sale()
    line = sale.lines.first()
    before = db_state()
    body = orders_error(orders_client.post(url(orders_key[0].connection_id, sale.pk), {
        "items": [{"itemId": line.pk, "quantity": 1, **item_extra}]}, format="json"),
        400, "unknown_field")
    assert "Do not send price or tax fields" in body["message"] and path in body["message"]
    assert "calculated from the order" in body["errors"][path][0]
    assert db_state() == before


def test_a_top_level_amount_is_refused_too(orders_client, orders_key):
    sale = orders_sale()
    before = db_state()
    body = orders_error(orders_client.post(url(orders_key[0].connection_id, sale.pk),
                                           {"amount": 500}, format="json"), 400, "unknown_field")
    assert "Do not send price or tax fields" in body["message"]
    assert db_state() == before


def test_an_unknown_key_is_refused_by_name_and_nothing_is_written(orders_client, orders_key):
    sale = orders_sale()
    line = sale.lines.first()
    before = db_state()
    body = orders_error(orders_client.post(url(orders_key[0].connection_id, sale.pk), {
        "lineItems": [{"itemId": line.pk, "quantity": 1}],
        "items": [{"itemId": line.pk, "qty": 1}]}, format="json"), 400, "unknown_field")
    assert {"lineItems", "items[0].qty"} <= set(body["errors"])
    assert "lineItems" in body["message"] and "nothing was done" in body["message"]
    assert db_state() == before


def test_more_than_is_left_is_a_422_naming_the_item(orders_client, orders_key):
    sale = orders_sale()
    line = sale.lines.order_by("pk")[0]
    before = db_state()
    body = orders_error(orders_client.post(url(orders_key[0].connection_id, sale.pk), {
        "items": [{"itemId": str(line.pk), "quantity": 4}]}, format="json"),
        422, "refund_quantity_exceeded")
    assert body["errors"] == {"items[0].quantity": ["only 3 left to refund"]}
    assert db_state() == before


def test_an_unknown_order_is_a_404_and_an_unknown_line_a_422(orders_client, orders_key):
    sale = orders_sale()
    before = db_state()
    orders_error(orders_client.post(url(orders_key[0].connection_id, "NO-SUCH-ORDER"), {},
                                    format="json"), 404, "sale_not_found")
    body = orders_error(orders_client.post(url(orders_key[0].connection_id, sale.pk), {
        "items": [{"itemId": 99999999, "quantity": 1}]}, format="json"), 422, "unknown_line")
    assert list(body["errors"]) == ["items[0].itemId"]
    body = orders_error(orders_client.post(url(orders_key[0].connection_id, sale.pk), {
        "items": [{"itemId": "x", "quantity": 0}]}, format="json"), 400, "invalid")
    assert {"items[0].itemId", "items[0].quantity"} <= set(body["errors"])
    assert db_state() == before


def test_a_bad_key_is_a_401_in_the_dialects_shape(orders_key):
    sale = orders_sale()
    for client in (key_client("nope.nothing"), APIClient()):
        body = orders_error(client.post(url(orders_key[0].connection_id, sale.pk), {},
                                        format="json"), 401, "authentication_invalid")
        assert body["error"] == "Unauthorized Error"


def test_a_key_without_the_refund_permission_is_a_403(orders_key):
    reader = UserFactory(username="reader", is_staff=False)
    grant(reader, "sales.view_sale")
    key = make_key(reader, "reader")
    row = ApiKey.objects.get_from_key(key)
    orders_error(key_client(key).post(url(row.connection_id, orders_sale().pk), {},
                                      format="json"), 403, "permission_denied")


def test_an_idempotency_key_replays_the_first_answer(orders_client, orders_key):
    sale = orders_sale()
    line = sale.lines.first()
    target = url(orders_key[0].connection_id, sale.pk)
    body = {"items": [{"itemId": line.pk, "quantity": 1}]}
    first = orders_client.post(target, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = orders_client.post(target, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content and again["Idempotent-Replayed"] == "true"
    assert Refund.objects.filter(sale=sale).count() == 1
    orders_error(orders_client.post(target, {"items": [{"itemId": line.pk, "quantity": 2}]},
                                    format="json", HTTP_IDEMPOTENCY_KEY="k-1"),
                 422, "idempotency_key_reused")
    sale.refresh_from_db()
    assert sale.refunded_units == 1 == sum(
        rl.quantity for r in Refund.objects.filter(sale=sale) for rl in r.lines.all())


def test_an_unknown_query_parameter_is_refused(orders_client, orders_key):
    sale = orders_sale()
    before = db_state()
    body = orders_error(orders_client.post(url(orders_key[0].connection_id, sale.pk) + "?dry=1",
                                           {}, format="json"), 400, "unknown_field")
    assert "dry" in body["errors"]
    assert db_state() == before


def test_create_api_key_prints_the_connection_id_on_stderr(orders_user):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "shop-sync", "--user", orders_user.username,
                 stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert "\n" not in key  # stdout: the key alone
    row = ApiKey.objects.get(name="shop-sync")
    assert f"Connection id: {row.connection_id}" in err.getvalue()
    response = key_client(key).post(url(row.connection_id, orders_sale().pk), {},
                                    format="json")
    assert response.status_code == 201, response.content


def test_every_key_has_its_own_connection_id_shown_read_only_in_the_admin(admin_client,
                                                                          orders_user):
    response = admin_client.post("/admin/backoffice/apikey/add/",
                                 {"name": "from-admin", "user": orders_user.pk}, follow=True)
    row = ApiKey.objects.get(name="from-admin")
    assert str(row.connection_id) in response.content.decode()  # the message after saving
    make_key(orders_user, "second")
    assert len(set(ApiKey.objects.values_list("connection_id", flat=True))) == 2
    page = admin_client.get(f"/admin/backoffice/apikey/{row.pk}/change/").content.decode()
    assert str(row.connection_id) in page
    assert 'name="connection_id"' not in page  # shown, not editable


def test_the_schema_documents_the_dialect_under_its_own_tag(db):
    spec = APIClient().get("/api/v2/schema/?format=json").json()
    op = spec["paths"]["/compat/orders-api/connections/{connectionId}/orders/{orderId}/refunds"][
        "post"]
    assert op["tags"] == ["Dialect: line-item refund API (orders-api)"]
    assert {"201", "400", "401", "403", "404", "422", "429", "500"} <= set(op["responses"])
    created = op["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/OrdersApiRefundOut"}
    props = spec["components"]["schemas"]["OrdersApiRefundOut"]["properties"]
    assert {"connectionId", "items", "batchId", "createdDate", "returnedDate"} <= set(props)
    request = spec["components"]["schemas"]["OrdersApiRefundRequest"]
    assert request["additionalProperties"] is False
    assert set(request["properties"]) == {"batchId", "items", "returnedDate"}


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_every_existing_key_its_own_connection_id():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("backoffice", "0001_initial")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    user = old.get_model("auth", "User").objects.create(username="early")
    for i in range(3):
        old.get_model("backoffice", "ApiKey").objects.create(
            id=f"key-{i}", prefix=f"p{i}", hashed_key="h", name=f"early-{i}", user=user)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    ids = list(ApiKey.objects.values_list("connection_id", flat=True))
    assert len(ids) == 3 and None not in ids and len(set(ids)) == 3
