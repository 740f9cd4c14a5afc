"""Idempotency keys belong to their caller (an API key; a staff session's user), as
Stripe's belong to an account: another integration using the same key first neither
replays nor burns it. Replay and mismatch keep their meaning within one caller."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from backoffice.models import IdempotencyKey
from refunds.models import Refund
from refunds.services import refund_create
from sales.models import Payment
from tests.factories import SaleFactory, UserFactory

from .conftest import ALL_PERMS, assert_error, assert_ok, grant, key_client, make_key

pytestmark = pytest.mark.django_db


def _integration(name: str) -> APIClient:
    user = UserFactory(username=name, is_staff=False)
    grant(user, *ALL_PERMS)
    return key_client(make_key(user, name=name))


def _body(sale, qty=1):
    return {"items": [{"item_id": sale.lines.get().pk, "quantity": qty}]}


def test_another_integration_cannot_burn_a_key():
    mine, theirs = _integration("mine"), _integration("theirs")
    their_sale, my_sale = SaleFactory(lines=[(3, 1000)]), SaleFactory(lines=[(3, 1000)])
    url = "/api/v2/sales/{}/refunds/"
    assert_ok(theirs.post(url.format(their_sale.pk), _body(their_sale), format="json",
                          HTTP_IDEMPOTENCY_KEY="order-77"), 201)
    mine_first = mine.post(url.format(my_sale.pk), _body(my_sale, 2), format="json",
                           HTTP_IDEMPOTENCY_KEY="order-77")
    data = assert_ok(mine_first, 201)
    assert data["sale_id"] == my_sale.pk and data["lines"][0]["quantity"] == 2
    # Within one caller the key still replays, and a different body is still refused.
    again = mine.post(url.format(my_sale.pk), _body(my_sale, 2), format="json",
                      HTTP_IDEMPOTENCY_KEY="order-77")
    assert again.status_code == 201 and again.content == mine_first.content
    assert again["Idempotent-Replayed"] == "true"
    assert_error(mine.post(url.format(my_sale.pk), _body(my_sale, 1), format="json",
                           HTTP_IDEMPOTENCY_KEY="order-77"), 422, "idempotency_key_reused")
    assert Refund.objects.count() == 2
    assert IdempotencyKey.objects.filter(key="order-77").count() == 2
    my_sale.refresh_from_db()
    assert my_sale.refunded_units == 2


def test_two_keys_of_one_user_are_two_owners():
    user = UserFactory(username="shared", is_staff=False)
    grant(user, *ALL_PERMS)
    first, second = key_client(make_key(user, name="a")), key_client(make_key(user, name="b"))
    sale = SaleFactory(lines=[(3, 1000)])
    url = f"/api/v2/sales/{sale.pk}/refunds/"
    assert_ok(first.post(url, _body(sale), format="json", HTTP_IDEMPOTENCY_KEY="k"), 201)
    assert_ok(second.post(url, _body(sale), format="json", HTTP_IDEMPOTENCY_KEY="k"), 201)
    sale.refresh_from_db()
    assert sale.refunded_units == 2 == sum(r.units for r in Refund.objects.all())


def test_a_payment_key_is_scoped_too():
    mine, theirs = _integration("mine"), _integration("theirs")
    sale = SaleFactory(lines=[(1, 1000)], paid=False)
    url = f"/api/v2/sales/balance/{sale.pk}"
    assert_ok(theirs.put(url, {"amount": 100, "method": "cash"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="pay-1"))
    assert_ok(mine.put(url, {"amount": 200, "method": "cash"}, format="json",
                       HTTP_IDEMPOTENCY_KEY="pay-1"))
    assert sorted(Payment.objects.filter(sale=sale).values_list("amount", flat=True)) == [
        100, 200]


def test_staff_sessions_are_scoped_by_user():
    sale = SaleFactory(lines=[(3, 1000)])
    url = f"/api/v2/sales/{sale.pk}/refunds/"
    for name in ("boss", "other-boss"):
        client = APIClient(enforce_csrf_checks=False)
        client.force_login(UserFactory(username=name, is_staff=True, is_superuser=True))
        assert_ok(client.post(url, _body(sale), format="json", HTTP_IDEMPOTENCY_KEY="s-1"),
                  201)
    assert Refund.objects.count() == 2


def test_the_service_scopes_its_own_replay_by_owner():
    sale = SaleFactory(lines=[(3, 1000)])
    line = sale.lines.get()
    a = refund_create(sale_id=sale.pk, items={line.pk: 1}, idempotency_key="x",
                      idempotency_owner="key:1")
    b = refund_create(sale_id=sale.pk, items={line.pk: 1}, idempotency_key="x",
                      idempotency_owner="key:2")
    again = refund_create(sale_id=sale.pk, items={line.pk: 1}, idempotency_key="x",
                          idempotency_owner="key:1")
    assert a.refund.pk != b.refund.pk and again.replayed and again.refund.pk == a.refund.pk


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_earlier_rows_their_caller():
    """Migration 0006 run on the rows as they were then (refunds 0008: a refund still
    carried its key and owner; refunds 0009 moved them into the one store)."""
    from importlib import import_module

    from tests.migrating import migrated_to

    migration = import_module("refunds.migrations.0006_hardening_idempotency_scope")
    with migrated_to([("refunds", "0008_idempotencykey_to_backoffice")]) as apps:
        OldRefund = apps.get_model("refunds", "Refund")
        OldKey = apps.get_model("backoffice", "IdempotencyKey")
        mine = UserFactory(username="mine", is_staff=False)
        make_key(mine, name="mine")
        api_key = mine.api_keys.get()
        sale = SaleFactory(lines=[(3, 1000)])
        refund = OldRefund.objects.create(
            sale_id=sale.pk, currency=sale.currency, source="api", api_key_id=api_key.pk,
            created_by_id=mine.pk, idempotency_key="old-1", idempotency_owner="",
            request_hash="h")
        OldKey.objects.create(key="old-1", owner="", request_hash="h", response_status=201,
                              response_body="{}", refund_id=refund.pk)

        class AppsOfThen:
            """The registry as migration 0006 saw it: IdempotencyKey still in refunds (it
            is in backoffice since backoffice 0005)."""

            def get_model(self, app_label, name):
                return apps.get_model("backoffice" if name == "IdempotencyKey" else app_label,
                                      name)

        migration.fill_owners(AppsOfThen(), None)
        owner = OldRefund.objects.get().idempotency_owner
        assert owner == f"key:{api_key.prefix}" == OldKey.objects.get().owner
