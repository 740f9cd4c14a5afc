"""Ledger rows (refunds, refund lines, payment allocations) and the audit trail of bulk
imports are append-only: nobody, not even a superuser, can add, change or delete them
through the admin or the API. A correction is a new refund."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from refunds.models import Refund, RefundImport, RefundLine, RefundPayment
from refunds.services import refund_create
from tests.factories import SaleFactory, UserFactory

LEDGER_MODELS = [Refund, RefundLine, RefundPayment, RefundImport]


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def ledger(db):
    sale = SaleFactory(lines=[(3, 1200)])
    line = sale.lines.first()
    result = refund_create(sale_id=sale.pk, items={line.pk: 1})
    refund = Refund.objects.get(pk=getattr(result, "refund", result).pk)
    return {
        Refund: refund,
        RefundLine: refund.lines.get(),
        RefundPayment: refund.allocations.get(),
        RefundImport: RefundImport.objects.create(source="api", count=1, outcome="success"),
    }


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _snapshot(obj):
    obj.refresh_from_db()
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda m: m.__name__)
def test_admin_grants_no_add_change_or_delete_permission(model, superuser, ledger):
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/")
    request.user = superuser
    obj = ledger[model]
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request, obj) is False
    assert model_admin.has_delete_permission(request, obj) is False
    assert "delete_selected" not in model_admin.get_actions(request)


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda m: m.__name__)
def test_change_post_is_refused_and_changes_nothing(model, client, superuser, ledger):
    client.force_login(superuser)
    obj = ledger[model]
    before = _snapshot(obj)
    data = {f.name: "" for f in model._meta.concrete_fields if f.name != "id"}
    data.update({"amount": 1, "total": 1, "quantity": 99, "status": "failed"})
    response = client.post(_url(model, "change", obj.pk), data)
    assert response.status_code == 403
    assert _snapshot(obj) == before


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda m: m.__name__)
def test_change_page_is_read_only(model, client, superuser, ledger):
    client.force_login(superuser)
    response = client.get(_url(model, "change", ledger[model].pk))
    assert response.status_code == 200  # viewable ...
    assert b'name="_save"' not in response.content  # ... but no save button
    assert _url(model, "delete", ledger[model].pk).encode() not in response.content


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda m: m.__name__)
def test_delete_url_is_refused_and_deletes_nothing(model, client, superuser, ledger):
    client.force_login(superuser)
    obj = ledger[model]
    assert client.get(_url(model, "delete", obj.pk)).status_code == 403
    assert client.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda m: m.__name__)
def test_add_url_is_refused(model, client, superuser, ledger):
    client.force_login(superuser)
    count = model.objects.count()
    assert client.get(_url(model, "add")).status_code == 403
    assert client.post(_url(model, "add"), {}).status_code == 403
    assert model.objects.count() == count


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda m: m.__name__)
def test_no_bulk_delete_action_on_the_list(model, client, superuser, ledger):
    client.force_login(superuser)
    changelist = _url(model, "changelist")
    response = client.get(changelist)
    assert response.status_code == 200
    assert b'value="delete_selected"' not in response.content

    obj = ledger[model]
    response = client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert model.objects.filter(pk=obj.pk).exists()


# -- the API: refunds are read (GET) and made (POST on a sale); never edited or deleted --


@pytest.fixture
def superuser_api(superuser):
    from rest_framework.test import APIClient

    from backoffice.models import ApiKey

    _, key = ApiKey.objects.create_key(name="ledger-test", user=superuser)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_the_api_has_no_way_to_edit_or_delete_a_refund(method, superuser_api, ledger):
    refund = ledger[Refund]
    before = _snapshot(refund)
    url = reverse("api:refund-detail", args=[refund.pk])
    assert superuser_api.get(url).status_code == 200
    response = getattr(superuser_api, method)(url, {"total": 1, "status": "failed"}, format="json")
    assert response.status_code == 405
    assert _snapshot(refund) == before
    assert Refund.objects.filter(pk=refund.pk).exists()
