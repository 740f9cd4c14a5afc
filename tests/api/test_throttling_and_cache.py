"""Throttling that holds in production: counted in one shared cache, per client address
for requests with no key or a bad one; and a cache outage never takes the API down."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache

from backoffice import health
from backoffice.api.throttling import ApiKeyRateThrottle
from refunds.models import Refund, RefundLine, RefundPayment
from sales.models import Payment, Sale, SaleLine
from tests.factories import SaleFactory

from .conftest import assert_error, assert_ok, key_client

pytestmark = pytest.mark.django_db

# Redis database 12 is this suite's cache database (never the broker's).
SHARED_CACHE = "redis://127.0.0.1:6379/12"
DEAD_CACHE = "redis://127.0.0.1:1/0"


def _redis_cache(location: str) -> dict:
    return {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location,
        "KEY_PREFIX": "test-throttle",
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    }}


@pytest.fixture
def fresh_breaker():
    health._cache_down_until = 0.0
    yield
    health._cache_down_until = 0.0


@pytest.fixture
def dead_cache(settings, fresh_breaker):
    """The cache pointed at a port where no Redis listens; put back before the other
    fixtures' teardown clears the cache."""
    old = settings.CACHES
    settings.CACHES = {**old, **_redis_cache(DEAD_CACHE)}
    yield
    settings.CACHES = old


def test_two_workers_share_one_count(settings, api, monkeypatch, fresh_breaker):
    """Two processes = two cache clients on one Redis: 40 calls at 30/minute let 30
    through, whichever worker answers (each counting alone let 88 of 120 through)."""
    settings.API_THROTTLE_RATES = {"key": "30/minute", "bulk": "30/minute"}
    workers = [RedisCache(SHARED_CACHE, {"KEY_PREFIX": "test-throttle"}) for _ in range(2)]
    workers[0].clear()
    passed = 0
    for i in range(40):
        monkeypatch.setattr(ApiKeyRateThrottle, "cache", workers[i % 2])
        passed += api.get("/api/v2/sales/").status_code == 200
    workers[0].clear()
    assert passed == 30


def test_requests_without_a_usable_key_are_throttled_per_address(settings, api):
    settings.API_THROTTLE_RATES = {"key": "100/minute", "bulk": "100/minute",
                                   "address": "3/minute"}
    anonymous = key_client("nope.nope")
    anonymous.credentials()  # no key at all
    bad = key_client("bad.key")
    assert anonymous.get("/api/v2/sales/").status_code == 401
    assert bad.get("/api/v2/sales/").status_code == 401
    assert anonymous.get("/api/v2/sales/").status_code == 401
    response = bad.get("/api/v2/sales/")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert_error(anonymous.get("/api/v2/sales/"), 429, "throttled")
    # Another address, and a valid key from this one, are not held back.
    assert anonymous.get("/api/v2/sales/", REMOTE_ADDR="198.51.100.20").status_code == 401
    assert api.get("/api/v2/sales/").status_code == 200


def test_behind_the_proxy_the_address_is_the_one_it_appended(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.API_THROTTLE_RATES = {"key": "1/minute", "bulk": "1/minute",
                                   "address": "1/minute"}
    client = key_client("bad.key")
    spoofed = {"HTTP_X_FORWARDED_FOR": "10.0.0.1, 203.0.113.9"}
    assert client.get("/api/v2/sales/", **spoofed).status_code == 401
    # A new spoofed left part does not make a new client: the proxy's entry decides.
    assert client.get("/api/v2/sales/", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.9"
                      ).status_code == 429
    assert client.get("/api/v2/sales/", HTTP_X_FORWARDED_FOR="203.0.113.10"
                      ).status_code == 401


def test_with_the_cache_down_refunds_still_answer_and_the_books_add_up(
    settings, api, caplog, dead_cache, client
):
    settings.API_THROTTLE_RATES = {"key": "2/minute", "bulk": "2/minute",
                                   "address": "2/minute"}
    before = health.COUNTERS["cache_unavailable"]
    sale = SaleFactory(lines=[(5, 1000), (3, 700)])
    lines = list(sale.lines.order_by("pk"))
    with caplog.at_level(logging.WARNING, logger="backoffice.health"):
        for line in lines * 2:
            assert_ok(api.post(f"/api/v2/sales/{sale.pk}/refunds/", {
                "items": [{"item_id": line.pk, "quantity": 1}]}, format="json"), 201)
        assert_ok(api.get(f"/api/v2/sales/{sale.pk}/"))
        assert key_client("bad.key").get("/api/v2/sales/").status_code == 401
    assert "cache_unavailable" in caplog.messages
    assert health.COUNTERS["cache_unavailable"] - before >= 6

    sale.refresh_from_db()
    assert Refund.objects.filter(sale=sale).count() == 4
    for line in SaleLine.objects.filter(sale=sale):
        rows = RefundLine.objects.filter(sale_line=line)
        assert line.refunded_quantity == sum(r.quantity for r in rows) == 2
        assert line.refunded_amount == sum(r.amount for r in rows)
    for pay in Payment.objects.filter(sale=sale):
        assert pay.refunded_amount == sum(
            a.amount for a in RefundPayment.objects.filter(payment=pay))
    assert sale.amount_refunded == sum(r.total for r in Refund.objects.filter(sale=sale))
    assert Sale.objects.get(pk=sale.pk).status == "partially_refunded"

    # /readyz: the cache is named apart from the database and the broker, and the
    # process stays in the pool (200, degraded) with its count of requests served without.
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded" and body["degraded"] == ["cache"]
    assert body["checks"]["cache"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True and body["checks"]["broker"]["ok"]
    assert body["counters"]["cache_unavailable"] >= 6


def test_a_working_cache_is_reported_ok(client):
    cache.clear()
    body = client.get("/readyz").json()
    assert body["status"] == "ok" and body["checks"]["cache"]["ok"] is True
