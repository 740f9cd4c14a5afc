"""The audit trail in the admin (DESIGN §3.10): a cancel says who, through which door,
with which options; a user who acted can't be deleted (deactivate them); API keys are
revoked, never deleted; django-axes' login logs are read-only for everybody."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import reverse

from backoffice.models import ApiKey
from refunds.admin.cancel_page import cancel_audit
from refunds.models import RefundImport, Source
from refunds.services import refund_create, sale_cancel
from sales.models import Payment, Sale, SaleCancellation
from tests.factories import SaleFactory, UserFactory

pytestmark = pytest.mark.django_db


def _log_messages(sale) -> list[str]:
    return list(LogEntry.objects.filter(object_id=str(sale.pk)).order_by("pk")
                .values_list("change_message", flat=True))


# -- how a sale was cancelled ------------------------------------------------------------


def test_the_cancel_page_logs_who_door_reason_label_and_options(supervisor_client,
                                                                sale_factory):
    sale = sale_factory(lines=[(2, 1000)])
    response = supervisor_client.post(reverse("admin:sales_sale_cancel", args=[sale.pk]),
                                      {"reason": "customer", "restock": "on"})
    assert response.status_code == 302
    assert _log_messages(sale) == [
        "Cancelled by supervisor through the admin — reason Customer changed their mind, "
        "units restocked, customer not alerted."
    ]


def test_the_cancel_action_logs_the_same_sentence_per_sale(supervisor_client, sale_factory):
    sales = [sale_factory(lines=[(1, 500)]), sale_factory(lines=[(1, 500)], paid=False)]
    response = supervisor_client.post(reverse("admin:sales_sale_changelist"), {
        "action": "cancel_selected", ACTION_CHECKBOX_NAME: [s.pk for s in sales],
        "post": "yes", "reason": "inventory", "alert_customer": "on",
    })
    assert response.status_code == 302
    for sale in sales:
        assert _log_messages(sale) == [
            "Cancelled by supervisor through the admin — reason Out of stock, units not "
            "restocked, customer alerted."
        ]


def test_the_sale_page_says_how_it_was_cancelled(admin_client, sale_factory):
    sale = sale_factory(lines=[(1, 500)])
    sale_cancel(sale_id=sale.pk, reason="fraud", restock=False, alert_customer=True,
                actor=UserFactory(username="integration"), source=Source.API)
    html = admin_client.get(reverse("admin:sales_sale_change", args=[sale.pk])).content.decode()
    assert ("Cancelled by integration through the API — reason Fraudulent, units not "
            "restocked, customer alerted.") in html
    assert "field-cancellation_display" in html
    assert "fraud" not in html.replace("Fraudulent", "")  # the label, never the code


def test_a_sale_not_cancelled_has_no_cancellation_line(admin_client, sale_factory):
    sale = sale_factory(lines=[(1, 500)])
    html = admin_client.get(reverse("admin:sales_sale_change", args=[sale.pk])).content.decode()
    assert "field-cancellation_display" not in html and "through the" not in html


def test_an_old_cancel_says_only_what_it_kept():
    cancellation = SaleCancellation(reason="staff", source="", restock=None, alert=None)
    assert cancel_audit(cancellation) == "Cancelled — reason Staff error."
    cancellation.source = "command"
    assert cancel_audit(cancellation) == ("Cancelled through the command line — reason Staff "
                                          "error.")


# -- protected actors ------------------------------------------------------------------


@pytest.mark.parametrize("act", ["sale", "payment", "refund", "import", "cancel"])
def test_the_admin_refuses_to_delete_a_user_who_acted(act, admin_client):
    user = UserFactory(username="leaver")
    sale = SaleFactory(lines=[(1, 500)])
    if act == "sale":
        Sale.objects.filter(pk=sale.pk).update(created_by=user)
    elif act == "payment":
        Payment.objects.filter(sale=sale).update(created_by=user)
    elif act == "refund":
        refund_create(sale_id=sale.pk, actor=user)
    elif act == "import":
        RefundImport.objects.create(source="admin", count=0, outcome="success",
                                    created_by=user)
    else:
        sale_cancel(sale_id=sale.pk, actor=user)
    url = reverse("admin:auth_user_delete", args=[user.pk])
    page = admin_client.get(url).content.decode()
    assert "would require deleting the following protected related objects" in page
    assert "untick “Active”" in page  # what to do instead
    assert 'name="post"' not in page  # no confirm button
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 200  # the same refusal, nothing deleted
    assert "protected related objects" in response.content.decode()
    assert get_user_model().objects.filter(pk=user.pk).exists()


def test_the_bulk_delete_of_users_refuses_those_who_acted(admin_client):
    leaver, typo = UserFactory(username="leaver"), UserFactory(username="typo")
    refund_create(sale_id=SaleFactory(lines=[(1, 500)]).pk, actor=leaver)
    response = admin_client.post(reverse("admin:auth_user_changelist"), {
        "action": "delete_selected", ACTION_CHECKBOX_NAME: [leaver.pk, typo.pk],
        "post": "yes"})
    assert response.status_code == 200
    assert "protected" in response.content.decode()
    assert get_user_model().objects.filter(pk__in=[leaver.pk, typo.pk]).count() == 2


def test_the_admin_still_deletes_a_user_who_did_nothing(admin_client):
    user = UserFactory(username="typo")
    response = admin_client.post(reverse("admin:auth_user_delete", args=[user.pk]),
                                 {"post": "yes"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=user.pk).exists()


def test_a_user_with_an_api_key_is_deactivated_not_deleted(admin_client):
    """Deleting the user would delete the key, which the admin never does (revoke it)."""
    user = UserFactory(username="svc")
    ApiKey.objects.create_key(name="shop-sync", user=user)
    url = reverse("admin:auth_user_delete", args=[user.pk])
    page = admin_client.get(url).content.decode()
    assert "permission to delete the following types of objects" in page
    assert "API key" in page
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert get_user_model().objects.filter(pk=user.pk).exists()
    assert ApiKey.objects.filter(user=user).exists()


# -- API keys: revoked, never deleted -----------------------------------------------------


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_superuser=True)


def test_an_api_key_cannot_be_deleted_in_the_admin(admin_client, root):
    key, _ = ApiKey.objects.create_key(name="shop-sync", user=UserFactory(username="svc"))
    model_admin = admin.site._registry[ApiKey]
    assert model_admin.has_delete_permission(_request(root), key) is False
    assert "delete_selected" not in model_admin.get_actions(_request(root))
    url = reverse("admin:backoffice_apikey_delete", args=[key.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    admin_client.post(reverse("admin:backoffice_apikey_changelist"), {
        "action": "delete_selected", ACTION_CHECKBOX_NAME: [key.pk], "post": "yes"})
    assert ApiKey.objects.filter(pk=key.pk).exists()
    # Revoking stays.
    assert model_admin.has_change_permission(_request(root), key) is True


# -- django-axes: the login logs are read-only; attempts stay deletable (unlock) ----------


@pytest.fixture
def axes_rows(db):
    common = {"user_agent": "pytest", "ip_address": "127.0.0.1", "username": "someone",
              "http_accept": "*/*", "path_info": "/admin/login/"}
    return {
        AccessLog: AccessLog.objects.create(**common),
        AccessFailureLog: AccessFailureLog.objects.create(**common, locked_out=False),
        AccessAttempt: AccessAttempt.objects.create(**common, get_data="", post_data="",
                                                    failures_since_start=3),
    }


@pytest.mark.parametrize("model", [AccessLog, AccessFailureLog], ids=lambda m: m.__name__)
def test_login_logs_are_read_only_even_for_a_superuser(model, axes_rows, root, admin_client):
    model_admin = admin.site._registry[model]
    obj = axes_rows[model]
    request = _request(root)
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request, obj) is False
    assert model_admin.has_delete_permission(request, obj) is False
    assert model_admin.has_view_permission(request, obj) is True
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client.get(changelist).status_code == 200
    delete = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    admin_client.post(changelist, {"action": "delete_selected",
                                   ACTION_CHECKBOX_NAME: [obj.pk], "post": "yes"})
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    admin_client.post(change, {"username": "forged", "path_info": "/"})
    obj.refresh_from_db()
    assert obj.username == "someone"


def test_access_attempts_stay_deletable_so_staff_can_unlock(axes_rows, admin_client):
    attempt = axes_rows[AccessAttempt]
    response = admin_client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]),
                                 {"post": "yes"})
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(pk=attempt.pk).exists()
