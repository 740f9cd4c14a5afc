"""Who may see customers: without `sales.view_customer` a sale names its customer by id
only, and sales can't be searched by a customer's email or phone."""

from __future__ import annotations

import pytest

from tests.factories import SaleFactory, UserFactory

from .conftest import assert_error, assert_ok, grant, key_client, make_key

pytestmark = pytest.mark.django_db


def _client(*perms: str):
    user = UserFactory(username="reader-" + "-".join(p.split(".")[1] for p in perms),
                       is_staff=False)
    grant(user, *perms)
    return key_client(make_key(user))


@pytest.fixture
def sale():
    return SaleFactory(lines=[(2, 500)], external_id="WEB-5")


def test_without_view_customer_a_sale_carries_the_customer_id_only(sale):
    api = _client("sales.view_sale", "sales.add_payment")
    customer = sale.customer
    assert customer is not None and customer.email
    for data in (
        assert_ok(api.get(f"/api/v2/sales/{sale.pk}/")),
        assert_ok(api.get("/api/v2/sales/"))[0],
    ):
        assert data["customer"] == {"id": customer.pk}
    assert customer.email not in api.get(f"/api/v2/sales/{sale.pk}/").content.decode()
    assert_error(api.get("/api/v2/customers/"), 403, "permission_denied")


def test_with_view_customer_a_sale_names_its_customer(sale):
    api = _client("sales.view_sale", "sales.view_customer")
    data = assert_ok(api.get(f"/api/v2/sales/{sale.pk}/"))
    assert data["customer"]["email"] == sale.customer.email
    listed = assert_ok(api.get("/api/v2/sales/", {"search": sale.customer.email}))
    assert [s["id"] for s in listed] == [sale.pk]


def test_without_view_customer_search_by_email_or_phone_is_refused(sale):
    api = _client("sales.view_sale")
    for term in (sale.customer.email, "+44 7700 900123", "07700900123"):
        assert_error(api.get("/api/v2/sales/", {"search": term}), 403, "permission_denied")
    # Names find nothing either; the sale's own names still do.
    assert assert_ok(api.get("/api/v2/sales/", {"search": sale.customer.name})) == []
    found = assert_ok(api.get("/api/v2/sales/", {"search": "WEB-5"}))
    assert [s["id"] for s in found] == [sale.pk]


def test_a_write_answers_with_the_document_the_caller_may_see(sale):
    api = _client("sales.view_sale", "sales.add_payment", "sales.cancel_sale")
    data = assert_ok(api.put(f"/api/v2/sales/cancel/{sale.pk}", {}, format="json"))
    assert data["customer"] == {"id": sale.customer_id}
