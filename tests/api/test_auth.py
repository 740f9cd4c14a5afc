"""Keys: bearer or X-API-KEY; missing, wrong, revoked, expired → 401; no permission → 403."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from backoffice.models import ApiKey
from tests.factories import UserFactory

from .conftest import assert_error, assert_ok, grant, key_client, make_key

pytestmark = pytest.mark.django_db

AUTH_INVALID = {"status": 401, "error": "Authentication invalid"}


def test_bearer_key_reads_sales(api, paid_sale):
    data = assert_ok(api.get("/api/v2/sales/"))
    assert [s["id"] for s in data] == [paid_sale.pk]


def test_x_api_key_header_is_accepted(api_key, paid_sale):
    assert_ok(key_client(api_key, header="x-api-key").get(f"/api/v2/sales/{paid_sale.pk}/"))


def test_missing_key_is_401_with_the_exact_body():
    response = APIClient().get("/api/v2/sales/")
    assert response.status_code == 401
    assert response.json() == AUTH_INVALID
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("key", ["nonsense", "abcdefgh.wrongwrongwrong", ""])
def test_wrong_key_is_401(db, api_key, key):
    bad = key or api_key.split(".")[0] + ".x"
    response = key_client(bad).get("/api/v2/sales/")
    assert response.status_code == 401
    assert response.json() == AUTH_INVALID


def test_revoked_key_is_401(api_user):
    key = make_key(api_user)
    ApiKey.objects.filter(user=api_user).update(revoked=True)
    response = key_client(key).get("/api/v2/sales/")
    assert response.status_code == 401
    assert response.json() == AUTH_INVALID


def test_expired_key_is_401(api_user):
    key = make_key(api_user, expiry_date=timezone.now() - timedelta(seconds=1))
    response = key_client(key).get("/api/v2/sales/")
    assert response.status_code == 401
    assert response.json() == AUTH_INVALID


def test_key_of_inactive_user_is_401(api_user, api_key):
    api_user.is_active = False
    api_user.save()
    assert key_client(api_key).get("/api/v2/sales/").json() == AUTH_INVALID


def test_key_without_permission_is_403(paid_sale):
    user = UserFactory(username="reader", is_staff=False)
    grant(user, "sales.view_sale")
    client = key_client(make_key(user))
    assert_ok(client.get(f"/api/v2/sales/{paid_sale.pk}/"))
    body = assert_error(
        client.post(f"/api/v2/sales/{paid_sale.pk}/refunds/", {}, format="json"),
        403, "permission_denied",
    )
    assert body["errors"] == {}
    assert_error(client.put(f"/api/v2/sales/cancel/{paid_sale.pk}", {}, format="json"),
                 403, "permission_denied")
    paid_sale.refresh_from_db()
    assert paid_sale.status == "paid"


def test_key_is_stored_hashed_and_last_use_recorded(api_user):
    key = make_key(api_user)
    row = ApiKey.objects.get(user=api_user)
    assert key not in row.hashed_key and key != row.id
    assert row.last_used_at is None
    key_client(key).get("/api/v2/sales/")
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_staff_session_reads_and_csrf_is_enforced(paid_sale):
    staff = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    assert_ok(client.get(f"/api/v2/sales/{paid_sale.pk}/"))
    assert_error(client.put(f"/api/v2/sales/cancel/{paid_sale.pk}", {}, format="json"), 403,
                 "permission_denied")
    paid_sale.refresh_from_db()
    assert paid_sale.status == "paid"


def test_session_of_non_staff_user_is_401(paid_sale):
    client = APIClient()
    client.force_login(UserFactory(username="shopper", is_staff=False))
    assert client.get("/api/v2/sales/").json() == AUTH_INVALID


def test_throttled_key_gets_429_with_retry_after(settings, api):
    settings.API_THROTTLE_RATES = {"key": "2/minute", "bulk": "2/minute"}
    assert api.get("/api/v2/sales/").status_code == 200
    assert api.get("/api/v2/sales/").status_code == 200
    response = api.get("/api/v2/sales/")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_throttling_counts_per_key(settings, api_user):
    settings.API_THROTTLE_RATES = {"key": "1/minute", "bulk": "1/minute"}
    first, second = key_client(make_key(api_user)), key_client(make_key(api_user, "other"))
    assert first.get("/api/v2/sales/").status_code == 200
    assert second.get("/api/v2/sales/").status_code == 200
    assert first.get("/api/v2/sales/").status_code == 429


def test_create_api_key_prints_a_working_key_once(api_user, paid_sale):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "shop-sync", "--user", api_user.username, "--expires", "30",
                 stdout=out, stderr=err)
    key = out.getvalue().strip()
    row = ApiKey.objects.get(name="shop-sync")
    assert row.user == api_user and row.expiry_date > timezone.now() + timedelta(days=29)
    assert "not be shown again" in err.getvalue()
    assert_ok(key_client(key).get(f"/api/v2/sales/{paid_sale.pk}/"))


def test_create_api_key_for_unknown_user_fails():
    with pytest.raises(CommandError, match="No user"):
        call_command("create_api_key", "x", "--user", "ghost")


def test_admin_creates_and_lists_keys(admin_client, api_user):
    response = admin_client.post("/admin/backoffice/apikey/add/",
                                 {"name": "from-admin", "user": api_user.pk})
    assert response.status_code == 200  # the page showing the new key, once
    key = ApiKey.objects.get(name="from-admin")
    assert admin_client.get("/admin/backoffice/apikey/").status_code == 200
    assert admin_client.get(f"/admin/backoffice/apikey/{key.pk}/change/").status_code == 200


def test_revoking_a_key_in_the_admin_makes_it_answer_401(admin_client, api_user, paid_sale):
    key = make_key(api_user, "shop-sync")
    client = key_client(key)
    assert_ok(client.get(f"/api/v2/sales/{paid_sale.pk}/"))
    row = ApiKey.objects.get(name="shop-sync")
    url = f"/admin/backoffice/apikey/{row.pk}/change/"
    response = admin_client.post(url, {"name": "shop-sync", "revoked": "on",
                                       "expiry_date_0": "", "expiry_date_1": ""})
    assert response.status_code == 302, response.content
    row.refresh_from_db()
    assert row.revoked
    for c in (client, key_client(key, header="x-api-key")):
        response = c.get(f"/api/v2/sales/{paid_sale.pk}/")
        assert response.status_code == 401
        assert response.json() == AUTH_INVALID
    # For good: the admin cannot take the revocation back.
    admin_client.post(url, {"name": "shop-sync", "expiry_date_0": "", "expiry_date_1": ""})
    row.refresh_from_db()
    assert row.revoked
    assert client.get("/api/v2/sales/").status_code == 401


def test_create_api_key_with_a_new_user_and_the_integration_role(paid_sale):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "shop-sync", "--user", "integration", "--create-user",
                 "--role", "integration", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert "\n" not in key  # stdout: the key alone, for scripts
    user = ApiKey.objects.get(name="shop-sync").user
    assert user.username == "integration" and not user.is_staff
    assert not user.has_usable_password()
    assert "Created user integration" in err.getvalue()
    client = key_client(key)
    line = paid_sale.lines.first()
    assert_ok(client.get(f"/api/v2/sales/{paid_sale.pk}/"))
    assert_ok(client.get("/api/v2/products/"))
    assert_ok(client.get("/api/v2/customers/"))
    assert_ok(client.get("/api/v2/refunds/"))
    assert_ok(client.post(f"/api/v2/sales/{paid_sale.pk}/refunds/",
                          {"items": [{"item_id": line.pk, "quantity": 1}]}, format="json"), 201)
    assert_ok(client.post("/api/v2/refunds/validate", [], format="json"))
    sale = assert_ok(client.post("/api/v2/sales/", {"lines": [
        {"sku": "MUG-1", "description": "Mug", "quantity": 1, "unit_price": 1200}]},
        format="json"), 201)
    assert_ok(client.put(f"/api/v2/sales/balance/{sale['id']}",
                         {"amount": sale["total"], "method": "card"}, format="json"))
    assert_ok(client.put(f"/api/v2/sales/cancel/{sale['id']}", {}, format="json"))
    # Run again for the same user: no second user, a second key, the same permissions.
    call_command("create_api_key", "shop-sync-2", "--user", "integration", "--create-user",
                 "--role", "integration", "--perm", "sales.view_payment",
                 stdout=StringIO(), stderr=StringIO())
    user.refresh_from_db()
    assert ApiKey.objects.filter(user=user).count() == 2
    assert user.user_permissions.count() == 14


def test_create_api_key_grants_single_permissions(api_user):
    user = UserFactory(username="reader", is_staff=False)
    out = StringIO()
    call_command("create_api_key", "ro", "--user", "reader", "--perm", "sales.view_sale",
                 "--perm", "refunds.view_refund", stdout=out, stderr=StringIO())
    assert sorted(user.user_permissions.values_list("codename", flat=True)) == [
        "view_refund", "view_sale"]
    client = key_client(out.getvalue().strip())
    assert_ok(client.get("/api/v2/sales/"))
    assert_error(client.get("/api/v2/products/"), 403, "permission_denied")


@pytest.mark.parametrize("args,message", [
    (["--perm", "sales.fly"], "No such permission: sales.fly"),
    (["--perm", "view_sale"], "app.codename"),
    ([], "--create-user"),
])
def test_create_api_key_refuses_and_makes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", "x", "--user", "ghost",
                     *(["--create-user"] if args else []), *args)
    assert not ApiKey.objects.exists()
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="ghost").exists()


def test_unknown_api_path_is_a_json_404(db):
    response = APIClient().get("/api/v2/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
