"""Without sales.cancel_sale / refunds.add_refund: no button, no action, 403 at the URL."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from refunds.models import Refund
from refunds.services.roles import REFUND_CLERKS, SUPERVISORS, roles_ensure
from sales.models import SaleStatus

pytestmark = pytest.mark.django_db


def test_roles_exist_after_migrate_with_their_permissions():
    call_command("migrate", verbosity=0)  # the post_migrate receiver runs again
    clerks = Group.objects.get(name=REFUND_CLERKS)
    supervisors = Group.objects.get(name=SUPERVISORS)
    clerk_perms = {f"{p.content_type.app_label}.{p.codename}" for p in clerks.permissions.all()}
    sup_perms = {f"{p.content_type.app_label}.{p.codename}" for p in supervisors.permissions.all()}
    assert {"refunds.add_refund", "sales.view_sale", "sales.view_order"} <= clerk_perms
    assert "sales.cancel_sale" not in clerk_perms
    assert {"refunds.add_refund", "sales.cancel_sale", "refunds.add_refundimport"} <= sup_perms


def test_roles_ensure_is_idempotent():
    first = roles_ensure()
    second = roles_ensure()
    assert {g.pk for g in first.values()} == {g.pk for g in second.values()}
    assert Group.objects.filter(name__in=[REFUND_CLERKS, SUPERVISORS]).count() == 2


def test_viewer_sees_no_buttons_and_no_actions(viewer_client, sale_factory):
    sale = sale_factory()
    page = viewer_client.get(reverse("admin:sales_sale_change", args=[sale.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Refund…" not in html and "Cancel…" not in html
    listing = viewer_client.get(reverse("admin:sales_sale_changelist")).content.decode()
    assert "cancel_selected" not in listing and "refund_selected_in_full" not in listing


@pytest.mark.parametrize("name", ["admin:sales_sale_refund", "admin:sales_sale_refund_preview",
                                  "admin:sales_sale_cancel", "admin:sales_order_refund"])
def test_viewer_is_refused_at_the_url(viewer_client, sale_factory, name):
    sale = sale_factory(channel="storefront", external_id="W-1")
    assert viewer_client.get(reverse(name, args=[sale.pk])).status_code in (403, 405)
    assert viewer_client.post(reverse(name, args=[sale.pk]), {}).status_code == 403


def test_clerk_can_refund_but_not_cancel(clerk_client, sale_factory):
    sale = sale_factory()
    html = clerk_client.get(reverse("admin:sales_sale_change", args=[sale.pk])).content.decode()
    assert "Refund…" in html and "Cancel…" not in html
    assert clerk_client.get(reverse("admin:sales_sale_refund", args=[sale.pk])).status_code == 200
    assert clerk_client.get(reverse("admin:sales_sale_cancel", args=[sale.pk])).status_code == 403
    listing = clerk_client.get(reverse("admin:sales_sale_changelist")).content.decode()
    assert "refund_selected_in_full" in listing and "cancel_selected" not in listing


def test_clerk_cannot_cancel_through_the_action(clerk_client, sale_factory):
    sale = sale_factory()
    response = clerk_client.post(reverse("admin:sales_sale_changelist"), {
        "action": "cancel_selected", ACTION_CHECKBOX_NAME: [sale.pk], "post": "yes",
        "reason": "customer", "restock": "on",
    })
    assert response.status_code in (200, 302)
    sale.refresh_from_db()
    assert sale.status == SaleStatus.PAID


def test_viewer_cannot_refund_through_the_action(viewer_client, sale_factory):
    sale = sale_factory()
    viewer_client.post(reverse("admin:sales_sale_changelist"), {
        "action": "refund_selected_in_full", ACTION_CHECKBOX_NAME: [sale.pk], "post": "yes",
        "reason": "requested_by_customer",
    })
    assert not Refund.objects.exists()


def test_supervisor_sees_both_buttons(supervisor_client, sale_factory):
    sale = sale_factory()
    html = supervisor_client.get(
        reverse("admin:sales_sale_change", args=[sale.pk])).content.decode()
    assert "Refund…" in html and "Cancel…" in html


def test_import_page_needs_the_import_permission(clerk_client, supervisor_client):
    assert clerk_client.get(reverse("admin:refunds_refund_import")).status_code == 403
    assert supervisor_client.get(reverse("admin:refunds_refund_import")).status_code == 200


def test_ledger_is_read_only_even_for_superusers(admin_client, paid_sale, staff_user):
    from refunds.services import refund_create

    refund = refund_create(sale_id=paid_sale.pk, actor=staff_user).refund
    for name in ["refunds_refund", "refunds_refundline", "refunds_refundpayment",
                 "refunds_refundimport", "backoffice_idempotencykey"]:
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 403
    page = admin_client.get(reverse("admin:refunds_refund_change", args=[refund.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    delete = admin_client.post(reverse("admin:refunds_refund_delete", args=[refund.pk]),
                               {"post": "yes"})
    assert delete.status_code == 403
    assert Refund.objects.filter(pk=refund.pk).exists()


REFUSED = "You don't have permission to refund or cancel sales; ask a supervisor."


@pytest.mark.parametrize("who, name, method", [
    ("viewer", "admin:sales_sale_refund", "get"),
    ("viewer", "admin:sales_sale_refund_preview", "post"),
    ("viewer", "admin:sales_sale_cancel", "get"),
    ("viewer", "admin:sales_order_refund", "get"),
    ("clerk", "admin:sales_sale_cancel", "post"),
    ("clerk", "admin:refunds_refund_import", "get"),
])
def test_refusal_is_the_admin_page_in_plain_words_with_a_way_back(
        request, sale_factory, who, name, method):
    client = request.getfixturevalue(f"{who}_client")
    sale = sale_factory(channel="storefront", external_id="W-2")
    args = [] if name.endswith("_import") else [sale.pk]
    response = getattr(client, method)(reverse(name, args=args))
    assert response.status_code == 403
    html = response.content.decode()
    assert REFUSED in html
    assert 'id="site-name"' in html and "back office" in html  # the admin's own page
    if args:  # back to the sale
        model = "order" if "order" in name else "sale"
        assert f'href="{reverse(f"admin:sales_{model}_change", args=[sale.pk])}"' in html
    else:
        assert f'href="{reverse("admin:refunds_refund_changelist")}"' in html


def test_other_admin_refusals_use_the_same_page(admin_client):
    # Django's own 403 (the ledger cannot be added to) renders templates/403.html too.
    response = admin_client.get(reverse("admin:refunds_refund_add"))
    assert response.status_code == 403
    assert REFUSED in response.content.decode()
