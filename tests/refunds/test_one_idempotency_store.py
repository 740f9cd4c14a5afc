"""One idempotency store (README, "Idempotency"): every door's key is one
backoffice.IdempotencyKey row that points at the refund it made; the refund carries no
key of its own, so purging the key ends replay protection and nothing else. Refunds 0009
moved the keys refunds carried into the store."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from backoffice.errors import IdempotencyKeyReusedError
from backoffice.models import IdempotencyKey
from refunds.models import Refund
from refunds.services import RefundOptions, refund_create
from refunds.services.plan import normalise_items
from refunds.services.refund import request_fingerprint
from tests.api.conftest import key_client, make_key
from tests.factories import SaleFactory, UserFactory
from tests.migrating import migrate, migrated_to

BEFORE = [("refunds", "0008_idempotencykey_to_backoffice")]


def _units(sale) -> int:
    """Units refunded by the sale's refunds, against the sale's own counter."""
    sale.refresh_from_db()
    rows = sum(r.units for r in Refund.objects.filter(sale=sale))
    assert sale.refunded_units == rows
    return rows


@pytest.mark.django_db
def test_a_command_key_is_one_row_in_the_store_pointing_at_its_refund(paid_sale):
    out = StringIO()
    args = ("refund_sale", paid_sale.number, "--idempotency-key", "ops-7", "--commit")
    call_command(*args, stdout=out)
    call_command(*args, stdout=out)
    refund = Refund.objects.get()
    row = IdempotencyKey.objects.get()
    assert (row.owner, row.key, row.refund_id, row.response_status) == (
        "", "ops-7", refund.pk, None)
    assert f"replayed: refund {refund.pk}" in out.getvalue()
    assert _units(paid_sale) == 3


@pytest.mark.django_db
def test_an_api_refund_is_recorded_once_with_its_response(paid_sale):
    user = UserFactory(username="integration", is_staff=False, is_superuser=True)
    client = key_client(make_key(user))
    body = {"items": [{"item_id": paid_sale.lines.get().pk, "quantity": 1}]}
    url = f"/api/v2/sales/{paid_sale.pk}/refunds/"
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="one")
    again = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="one")
    assert first.status_code == again.status_code == 201 and first.content == again.content
    row = IdempotencyKey.objects.get()  # one record of the key, not one per layer
    assert row.refund_id == Refund.objects.get().pk and row.response_status == 201
    assert _units(paid_sale) == 1


@pytest.mark.django_db
def test_purging_a_key_leaves_its_refund_and_ends_only_the_replay(paid_sale):
    line = paid_sale.lines.get()
    first = refund_create(sale_id=paid_sale.pk, items={line.pk: 1}, idempotency_key="k")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(days=8))
    call_command("purge_idempotency_keys", stdout=StringIO())
    assert not IdempotencyKey.objects.exists()
    assert Refund.objects.get().pk == first.refund.pk  # the refund's record is whole
    again = refund_create(sale_id=paid_sale.pk, items={line.pk: 1}, idempotency_key="k")
    assert not again.replayed and again.refund.pk != first.refund.pk
    assert _units(paid_sale) == 2


@pytest.mark.django_db
def test_an_api_answer_without_a_refund_is_not_replayed_as_a_refund(paid_sale):
    """A key that answered an API request making no refund, met again by the service
    under the same owner: another request, never a replay of nothing."""
    line = paid_sale.lines.get()
    IdempotencyKey.objects.create(owner="key:x", key="k", response_status=200,
                                  response_body="{}",
                                  request_hash=_fingerprint(paid_sale, line))
    with pytest.raises(IdempotencyKeyReusedError):
        refund_create(sale_id=paid_sale.pk, items={line.pk: 1}, idempotency_key="k",
                      idempotency_owner="key:x")
    assert _units(paid_sale) == 0


def _fingerprint(sale, line, qty=1) -> str:
    """What refund_create hashes for a request of `qty` units of `line`."""
    return request_fingerprint(sale_id=sale.pk, items=normalise_items({line.pk: qty}),
                               options=asdict(RefundOptions()), splits={})


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_the_keys_refunds_carried_into_the_store():
    with migrated_to(BEFORE) as apps:
        OldRefund = apps.get_model("refunds", "Refund")
        OldKey = apps.get_model("backoffice", "IdempotencyKey")
        sale = SaleFactory(lines=[(3, 1000)])
        line = sale.lines.get()

        def old_refund(**fields):
            return OldRefund.objects.create(sale_id=sale.pk, currency=sale.currency,
                                            units=1, **fields)

        # A command's refund (the service's own key, owner ""): only the refund had it.
        by_command = old_refund(source="command", idempotency_key="ops-42",
                                idempotency_owner="", request_hash=_fingerprint(sale, line))
        # An API refund: the refund and the API's row both had it.
        by_api = old_refund(source="api", idempotency_key="k-1", idempotency_owner="key:ab",
                            request_hash="h-api")
        OldKey.objects.create(owner="key:ab", key="k-1", request_hash="h-api",
                              response_status=201, response_body='{"a": 1}',
                              refund_id=by_api.pk)
        # A month-old one: it moves dated as its refund, so the purge takes it.
        month_ago = timezone.now() - timedelta(days=30)
        old = old_refund(source="command", idempotency_key="old", idempotency_owner="",
                         request_hash="h-old")
        OldRefund.objects.filter(pk=old.pk).update(created_at=month_ago)
        # A refund without a key stays without one.
        old_refund(source="admin")

        migrate()

        rows = {(r.owner, r.key): r for r in IdempotencyKey.objects.all()}
        assert sorted(rows) == [("", "old"), ("", "ops-42"), ("key:ab", "k-1")]
        assert rows["", "ops-42"].refund_id == by_command.pk
        assert rows["", "ops-42"].request_hash == _fingerprint(sale, line)
        assert rows["key:ab", "k-1"].response_status == 201
        assert rows["key:ab", "k-1"].refund_id == by_api.pk
        assert rows["", "old"].created_at == month_ago
        assert not {"idempotency_key", "idempotency_owner", "request_hash"} & {
            f.name for f in Refund._meta.get_fields()}

        # The command's key still replays its refund; another request is still refused.
        again = refund_create(sale_id=sale.pk, items={line.pk: 1}, idempotency_key="ops-42")
        assert again.replayed and again.refund.pk == by_command.pk
        with pytest.raises(IdempotencyKeyReusedError):
            refund_create(sale_id=sale.pk, items={line.pk: 2}, idempotency_key="ops-42")
        # The purge ends the month-old key's replay; its refund stays.
        call_command("purge_idempotency_keys", stdout=StringIO())
        assert not IdempotencyKey.objects.filter(key="old").exists()
        assert Refund.objects.filter(pk=old.pk).exists() and Refund.objects.count() == 4

        # Backwards: the refunds get their keys back from the store.
        apps = migrate(BEFORE)
        back = dict(apps.get_model("refunds", "Refund").objects.filter(
            idempotency_key__isnull=False).values_list("pk", "idempotency_key"))
        assert back == {by_command.pk: "ops-42", by_api.pk: "k-1"}


@pytest.mark.django_db
def test_a_keyed_api_refund_costs_no_query_for_a_second_store(postgres, paid_sale,
                                                              django_assert_max_num_queries):
    """The key is claimed once (its row), and the service writes in its 2 statements
    (the sale locked with its rows, the one write): 15 in all, one fewer than when the
    service looked its own key up on the refunds too."""
    user = UserFactory(username="integration", is_staff=False, is_superuser=True)
    client = key_client(make_key(user))
    body = {"items": [{"item_id": paid_sale.lines.get().pk, "quantity": 1}]}
    with django_assert_max_num_queries(15) as queries:
        response = client.post(f"/api/v2/sales/{paid_sale.pk}/refunds/", body, format="json",
                               HTTP_IDEMPOTENCY_KEY="q-1")
    assert response.status_code == 201
    assert not [q for q in queries.captured_queries
                if q["sql"].startswith('SELECT "refunds_refund"')]
    assert _units(paid_sale) == 1
