"""Odd input that once answered a 500 or an HTML page: each answers the JSON envelope."""

from __future__ import annotations

import json
import runpy

import pytest

from refunds.models import Refund
from tests.factories import SaleFactory

from .conftest import assert_error, assert_ok, key_client

pytestmark = pytest.mark.django_db


def _post_raw(api, url: str, body: str | bytes, **extra):
    return api.generic("POST", url, body, content_type="application/json", **extra)


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_a_400(api, depth):
    body = "[" * depth + "]" * depth
    for url in ("/api/v2/refunds/validate", "/api/v2/orders/refund"):
        err = assert_error(_post_raw(api, url, body), 400, "malformed")
        assert "nested" in err["error"]


def test_a_body_over_the_limit_is_a_413_in_the_envelope(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = json.dumps([{"id": f"r-{i}", "sale_id": 1, "line_items": []} for i in range(100)])
    assert len(body) > 2000
    err = assert_error(_post_raw(api, "/api/v2/refunds/validate", body), 413,
                       "payload_too_large")
    assert "2000 bytes" in err["error"]


def test_a_batch_of_1000_records_at_their_caps_fits_the_default_limit(api, settings):
    sale = SaleFactory(lines=[(1000, 100)])
    line = sale.lines.get()
    records = [{
        "id": f"{i:06d}-" + "x" * 121, "sale_id": sale.pk, "batch_id": "b" * 128,
        "note": "é" * 1000, "reason": "requested_by_customer", "restock": False,
        "refunded_at": "2026-11-20T10:00:00Z",
        "line_items": [{"item_id": line.pk, "quantity": 1}],
    } for i in range(1000)]
    body = json.dumps(records).encode()  # every é escaped: \u00e9, 6 bytes
    assert len(body) > 2_500_000  # more than Django's default limit
    assert len(body) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    data = assert_ok(_post_raw(api, "/api/v2/refunds/validate", body))
    assert data["result"] == "VALID" and data["count"] == 1000
    assert not Refund.objects.exists()


def test_a_bulk_note_over_its_cap_is_refused_on_its_field(api, paid_sale):
    line = paid_sale.lines.get()
    err = assert_error(api.post("/api/v2/refunds/validate", [{
        "id": "n-1", "sale_id": paid_sale.pk, "note": "n" * 1001,
        "line_items": [{"item_id": line.pk, "quantity": 1}]}], format="json"),
        400, "invalid_records")
    assert "1000 characters" in err["errors"]["[0].note"][0]


def test_a_bad_host_on_the_api_is_the_envelope(api):
    response = api.get("/api/v2/sales/", HTTP_HOST="evil.example.com")
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY", "HTTP_COOKIE",
                                    "HTTP_X_REQUEST_ID", "HTTP_USER_AGENT"])
def test_an_8_kb_header_is_answered_in_the_envelope(header, paid_sale):
    value = ("Bearer " if header == "HTTP_AUTHORIZATION" else "") + "k" * 8192
    response = key_client("nope").get(f"/api/v2/sales/{paid_sale.pk}/", **{header: value})
    assert response["Content-Type"].startswith("application/json")
    assert response.status_code in (401, 400)


def test_an_8_kb_idempotency_key_is_a_400(api, paid_sale):
    assert_error(api.post(f"/api/v2/sales/{paid_sale.pk}/refunds/", {}, format="json",
                          HTTP_IDEMPOTENCY_KEY="i" * 8192), 400, "invalid")


def test_gunicorn_lets_an_8_kb_header_through_to_the_app():
    from tests.production.conftest import BASE_DIR

    conf = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    assert conf["limit_request_field_size"] >= 16384
