"""Races through the HTTP layer, on PostgreSQL, with real threads on separate connections."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction

from backoffice.models import IdempotencyKey
from refunds.models import Refund
from sales.models import SaleLine
from tests.factories import SaleFactory

from .conftest import assert_error, key_client

pytestmark = pytest.mark.django_db(transaction=True)


def _in_threads(n: int, call):
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(timeout=30)
            return call(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_20_concurrent_partial_refunds_of_the_last_5_units(postgres, api_key):
    sale = SaleFactory(lines=[(8, 1000)])
    line = sale.lines.get()
    client = key_client(api_key)
    client.post(f"/api/v2/sales/{sale.pk}/refunds/",
                {"items": [{"item_id": line.pk, "quantity": 3}]}, format="json")
    url = f"/api/v2/sales/{sale.pk}/refunds/"

    def refund_one(i):
        response = key_client(api_key).post(
            url, {"items": [{"item_id": line.pk, "quantity": 1}]}, format="json")
        return response.status_code, response.json()

    results = _in_threads(20, refund_one)
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] * 5 + [422] * 15
    for status, body in results:
        if status == 422:
            assert body["code"] in ("refund_quantity_exceeded", "nothing_to_refund")
    line = SaleLine.objects.get(pk=line.pk)
    assert line.refunded_quantity == 8 and line.refunded_amount == line.net_amount
    sale.refresh_from_db()
    assert sale.status == "refunded" or sale.refunded_units == 8


def test_10_concurrent_replays_of_one_key_make_one_refund(postgres, api_key):
    sale = SaleFactory(lines=[(5, 1000)])
    line = sale.lines.get()
    body = {"items": [{"item_id": line.pk, "quantity": 1}]}

    def replay(i):
        response = key_client(api_key).post(f"/api/v2/sales/{sale.pk}/refunds/", body,
                                            format="json", HTTP_IDEMPOTENCY_KEY="same-key")
        return response.status_code, response.json()

    results = _in_threads(10, replay)
    assert {status for status, _ in results} == {201}
    assert len({json.dumps(b) for _, b in results}) == 1
    assert Refund.objects.filter(sale=sale).count() == 1
    assert SaleLine.objects.get(pk=line.pk).refunded_quantity == 1


def test_key_held_by_a_running_request_is_409(postgres, api_key, settings):
    settings.IDEMPOTENCY_LOCK_TIMEOUT_MS = 200
    sale = SaleFactory(lines=[(5, 1000)])
    line = sale.lines.get()
    holding, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                # Held by the same caller: keys are unique per owner (its API key).
                IdempotencyKey.objects.create(key="busy-key", request_hash="x",
                                              owner=f"key:{api_key.partition('.')[0]}")
                holding.set()
                release.wait(timeout=30)
                transaction.set_rollback(True)
        finally:
            connections["default"].close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(timeout=30)
        response = key_client(api_key).post(
            f"/api/v2/sales/{sale.pk}/refunds/",
            {"items": [{"item_id": line.pk, "quantity": 1}]}, format="json",
            HTTP_IDEMPOTENCY_KEY="busy-key")
        assert_error(response, 409, "idempotency_key_in_use")
    finally:
        release.set()
        holder.join()
    assert not Refund.objects.filter(sale=sale).exists()
