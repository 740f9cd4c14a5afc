"""The sale document PostgreSQL builds for GET /sales/{id}/ is SaleSerializer's, value for
value, for every kind of sale; and the fetch is two queries (the key with its user's
permissions, the sale) whatever the size of the sale."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from backoffice.errors import AmbiguousSaleError
from refunds.models import Refund
from refunds.services import RefundOptions, refund_create, sale_cancel
from sales.api.serializers import SaleSerializer
from sales.api.views import sale_detail
from sales.document import sale_detail_json
from sales.models import Sale
from tests.factories import SaleFactory

from .conftest import assert_error, assert_ok


def _serializer_document(sale_id: int, customer_details: bool = True) -> dict:
    return json.loads(json.dumps(SaleSerializer(
        sale_detail(sale_id), context={"customer_details": customer_details}).data))


def _varied_sales() -> list[Sale]:
    plain = SaleFactory(lines=[(3, 1200), (2, 499), (1, 99)], shipping_fee=499,
                        processing_fee=150, order_discount=100)
    lines = list(plain.lines.order_by("pk"))
    refund_create(sale_id=plain.pk, items={lines[0].pk: 1},
                  options=RefundOptions(online=False, reason="damaged", note="cracked"))
    refund_create(sale_id=plain.pk, items={lines[1].pk: 2})
    anonymous = SaleFactory(with_customer=False, lines=[
        {"quantity": 1, "unit_price": 1000, "description": "Théière « Ōsaka » \"x\"\n\\",
         "sku": "TEA-1", "tax_rate": "0.0550"}])
    quote = SaleFactory(kind="quote", paid=False, currency="JPY", lines=[(2, 1200)])
    cancelled = SaleFactory(lines=[(1, 500)], external_id="WEB-77")
    sale_cancel(sale_id=cancelled.pk, reason="fraud", note="card stolen")
    split = SaleFactory(lines=[(4, 250)], paid=False, payments=[
        {"method": "card", "amount": 600}, {"method": "cash", "amount": 600}])
    # A timestamp on a whole second: DRF leaves the microseconds out, so must the query.
    Refund.objects.filter(sale=plain).update(
        created_at=datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC))
    return [plain, anonymous, quote, cancelled, split]


@pytest.mark.parametrize("details", [True, False])
def test_the_postgresql_document_equals_the_serializers(postgres, details):
    for sale in _varied_sales():
        built = json.loads(sale_detail_json(sale.pk, customer_details=details))
        assert built == _serializer_document(sale.pk, details), sale.number
        if built["customer"] is not None:
            assert (set(built["customer"]) == {"id", "name", "email", "phone"}) is details
        # The same keys in the same order, nested ones included.
        assert list(built) == list(_serializer_document(sale.pk, details))
        for key in ("lines", "payments", "refunds"):
            for ours, theirs in zip(built[key], _serializer_document(sale.pk)[key],
                                    strict=True):
                assert list(ours) == list(theirs)


def test_a_sale_is_found_by_id_number_or_external_id_and_two_sales_are_ambiguous(postgres):
    sale = SaleFactory(lines=[(1, 100)])
    other = SaleFactory(lines=[(1, 100)], external_id="WEB-1")
    assert json.loads(sale_detail_json(sale.pk))["id"] == sale.pk
    assert json.loads(sale_detail_json(sale.number))["id"] == sale.pk
    assert json.loads(sale_detail_json(" WEB-1 "))["id"] == other.pk
    Sale.objects.filter(pk=other.pk).update(external_id=str(sale.pk))
    with pytest.raises(AmbiguousSaleError):
        sale_detail_json(sale.pk)
    assert json.loads(sale_detail_json(other.number))["id"] == other.pk


def test_fetch_is_two_queries_whatever_the_size_of_the_sale(
    postgres, api, django_assert_max_num_queries
):
    sale = SaleFactory(lines=[(2, 100 + i) for i in range(40)])
    for line in list(sale.lines.order_by("pk"))[:10]:
        refund_create(sale_id=sale.pk, items={line.pk: 1})
    api.get("/api/v2/sales/")  # first use of the key records last_used_at
    with django_assert_max_num_queries(2):
        data = assert_ok(api.get(f"/api/v2/sales/{sale.pk}/"))
    assert len(data["lines"]) == 40 and len(data["refunds"]) == 10
    assert data == _serializer_document(sale.pk)


def test_an_unknown_sale_is_a_404_in_the_envelope(postgres, api):
    assert_error(api.get("/api/v2/sales/S-999999/"), 404, "sale_not_found")
    assert_error(api.get("/api/v2/sales/99999999999999999999999/"), 404, "sale_not_found")


@pytest.mark.parametrize("path", ["/api/v2/sales/{pk}/?format=api"])
def test_the_browsable_api_shows_the_same_document(postgres, admin_client, path):
    sale = SaleFactory(lines=[(1, 100)])
    response = admin_client.get(path.format(pk=sale.pk))
    assert response.status_code == 200
    assert sale.number in response.content.decode()


def test_the_keys_query_brings_the_same_permissions_as_django(postgres, api_user):
    from django.contrib.auth.models import Group, Permission

    from backoffice.api.auth import _key_with_permissions
    from backoffice.models import ApiKey

    group = Group.objects.create(name="extra")
    group.permissions.add(Permission.objects.get(codename="delete_sale"))
    api_user.groups.add(group)
    _, key = ApiKey.objects.create_key(name="perm-check", user=api_user)
    loaded = _key_with_permissions(key)
    fresh = type(api_user).objects.get(pk=api_user.pk)
    assert set(loaded.user_perms) == fresh.get_all_permissions()
    assert "sales.delete_sale" in set(loaded.user_perms)
