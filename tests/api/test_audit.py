"""Per-key audit of API use (DESIGN §3.10): a refund, a cancellation's refund and a bulk
import name the API key they came through (Refund.api_key, RefundImport.api_key); the
refund's document shows the key's name and prefix; every log line of an API request
carries the key's prefix and its user, and the next request on the thread does not."""

from __future__ import annotations

import io
import json
import logging

import pytest
from rest_framework.test import APIClient

from backoffice.models import ApiKey
from refunds.models import Refund, RefundImport
from refunds.services import refund_create
from sales.models import Sale
from tests.factories import SaleFactory, UserFactory

from .conftest import assert_error, assert_ok, key_client, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_row(api_key) -> ApiKey:
    return ApiKey.objects.get_from_key(api_key)


@pytest.fixture
def staff_api(db) -> APIClient:
    """The browsable API's door: a staff session, no key."""
    client = APIClient()
    client.force_login(UserFactory(username="root", is_superuser=True))
    return client


def _key_ref(key: ApiKey) -> dict:
    return {"name": key.name, "prefix": key.prefix}


def test_a_refund_by_line_names_its_key(api, key_row, paid_sale):
    line = paid_sale.lines.get()
    data = assert_ok(api.post(f"/api/v2/sales/{paid_sale.pk}/refunds/",
                              {"items": [{"item_id": line.pk, "quantity": 1}]},
                              format="json"), 201)
    assert data["api_key"] == _key_ref(key_row)
    assert Refund.objects.get(pk=data["id"]).api_key_id == key_row.pk
    # Read back: the same.
    assert assert_ok(api.get(f"/api/v2/refunds/{data['id']}/"))["api_key"] == _key_ref(key_row)
    [listed] = assert_ok(api.get("/api/v2/refunds/"))
    assert listed["api_key"] == _key_ref(key_row)


def test_a_refund_by_order_id_names_its_key(api, key_row):
    sale = SaleFactory(external_id="WEB-77", lines=[(2, 1000)])
    data = assert_ok(api.post("/api/v2/orders/refund", {"order_id": "WEB-77"},
                              format="json"), 201)
    assert data["api_key"] == _key_ref(key_row)
    assert Refund.objects.get(sale=sale).api_key == key_row


@pytest.mark.parametrize("method", ["put", "post"])
def test_a_full_refund_names_its_key(method, api, key_row, paid_sale):
    assert_ok(getattr(api, method)(f"/api/v2/sales/refund/{paid_sale.pk}", {}, format="json"))
    assert Refund.objects.get(sale=paid_sale).api_key == key_row


@pytest.mark.parametrize("method", ["put", "post"])
def test_a_cancellation_refund_names_its_key_and_the_sale_its_door(method, api, key_row,
                                                                    paid_sale):
    assert_ok(getattr(api, method)(f"/api/v2/sales/cancel/{paid_sale.pk}",
                                   {"reason": "customer", "restock": "no"}, format="json"))
    refund = Refund.objects.get(sale=paid_sale)
    assert refund.type == "cancellation" and refund.api_key == key_row
    c = Sale.objects.select_related("cancellation").get(pk=paid_sale.pk).cancellation
    assert (c.source, c.restock, c.alert) == ("api", False, False)


def test_a_bulk_import_names_its_key_on_the_import_and_its_refunds(api, key_row, paid_sale):
    line = paid_sale.lines.get()
    records = [{"id": "r-1", "sale_id": paid_sale.pk,
                "line_items": [{"item_id": line.pk, "quantity": 1}]}]
    data = assert_ok(api.post("/api/v2/refunds/json", records, format="json"), 201)
    assert RefundImport.objects.get(pk=data["import_id"]).api_key == key_row
    assert Refund.objects.get(external_id="r-1").api_key == key_row


def test_a_refused_bulk_import_still_names_its_key(api, key_row):
    assert_error(api.post("/api/v2/refunds/json", [{"id": "x", "sale_id": 999999,
                                                     "line_items": []}], format="json"), 400)
    row = RefundImport.objects.get()
    assert row.outcome == "failure" and row.api_key == key_row


def test_each_key_is_named_by_itself(api_user, paid_sale):
    first, second = make_key(api_user, "shop-a"), make_key(api_user, "shop-b")
    line = paid_sale.lines.get()
    for key in (first, second):
        assert_ok(key_client(key).post(f"/api/v2/sales/{paid_sale.pk}/refunds/",
                                       {"items": [{"item_id": line.pk, "quantity": 1}]},
                                       format="json"), 201)
    assert list(Refund.objects.order_by("pk").values_list("api_key__name", flat=True)) == [
        "shop-a", "shop-b"]


def test_a_staff_session_refund_names_no_key(staff_api, paid_sale):
    data = assert_ok(staff_api.post(f"/api/v2/sales/{paid_sale.pk}/refunds/", {},
                                    format="json"), 201)
    assert data["api_key"] is None
    assert Refund.objects.get(pk=data["id"]).api_key is None


def test_a_refund_made_outside_the_api_renders_a_null_key(api, paid_sale):
    refund = refund_create(sale_id=paid_sale.pk).refund
    assert assert_ok(api.get(f"/api/v2/refunds/{refund.pk}/"))["api_key"] is None


def test_the_schema_documents_the_refund_s_key(db):
    spec = APIClient().get("/api/v2/schema/?format=json").json()
    refund = spec["components"]["schemas"]["Refund"]
    assert "api_key" in refund["properties"] and "api_key" in refund["required"]
    assert set(spec["components"]["schemas"]["ApiKeyRef"]["properties"]) == {"name", "prefix"}


# -- logs -------------------------------------------------------------------------------


@pytest.fixture
def json_lines():
    """The root logger's output through the production formatter and filter, the filter
    applied when each line is written (as the console handler does)."""
    from backoffice.logging import JsonFormatter, RequestContextFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_every_log_line_of_a_key_s_request_names_the_key_and_the_next_request_does_not(
        api, key_row, api_user, staff_api, paid_sale, json_lines):
    line = paid_sale.lines.get()
    data = assert_ok(api.post(f"/api/v2/sales/{paid_sale.pk}/refunds/",
                              {"items": [{"item_id": line.pk, "quantity": 1}]},
                              format="json"), 201)
    [created] = [entry for entry in json_lines() if entry["message"] == "refund created"]
    assert created["api_key"] == key_row.prefix
    assert created["user"] == api_user.username
    assert created["refund_id"] == data["id"] and created["sale_id"] == paid_sale.pk

    # The next request on the same thread, without a key, carries none of it.
    assert_ok(staff_api.post(f"/api/v2/sales/{paid_sale.pk}/refunds/",
                             {"items": [{"item_id": line.pk, "quantity": 1}]},
                             format="json"), 201)
    created = [entry for entry in json_lines() if entry["message"] == "refund created"]
    assert len(created) == 2
    assert "api_key" not in created[1] and "user" not in created[1]


def test_django_s_line_for_a_refused_key_request_names_the_key(api, key_row, json_lines):
    """django.request logs a 4xx after the middleware returned: the key is still on it."""
    assert_error(api.get("/api/v2/refunds/999999/"), 404)
    [warning] = [entry for entry in json_lines() if entry["logger"] == "django.request"]
    assert warning["api_key"] == key_row.prefix


def test_the_secret_part_of_a_key_is_never_logged(api_key, api, paid_sale, json_lines):
    assert_ok(api.post(f"/api/v2/sales/{paid_sale.pk}/refunds/", {}, format="json"), 201)
    secret = api_key.partition(".")[2]
    assert secret and secret not in json.dumps(json_lines())
