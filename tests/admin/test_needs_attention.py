"""A refund refused on one payment after another paid back shows as "Needs attention";
staff record the refused part as given back offline, after a confirmation page."""

from __future__ import annotations

from django.urls import reverse

from refunds.models import Refund
from refunds.services import RefundOptions, refund_create
from refunds.services.settle import refund_settle
from sales.models import Payment
from tests.factories import CustomerFactory, SaleFactory


def _refund_needing_attention(capture):
    sale = SaleFactory(lines=[(2, 1000)], tax_rate="0", payments=[
        {"amount": 1200, "method": "card", "gateway": "sandbox"},
        {"amount": 800, "method": "card", "gateway": "sandbox"},
    ], paid=False, customer=CustomerFactory())
    second = Payment.objects.filter(sale=sale).order_by("pk").last()
    Payment.objects.filter(pk=second.pk).update(gateway_reference="fail")
    with capture(execute=False):
        refund = refund_create(sale_id=sale.pk,
                               options=RefundOptions(alert_customer=True)).refund
    refund_settle(refund_id=refund.pk)
    return Refund.objects.get(pk=refund.pk)


def test_staff_see_it_confirm_and_it_succeeds(
    clerk_client, django_capture_on_commit_callbacks, mailoutbox
):
    refund = _refund_needing_attention(django_capture_on_commit_callbacks)
    assert refund.status == "pending"
    listing = clerk_client.get(reverse("admin:refunds_refund_changelist") + "?attention=yes")
    assert "Needs attention" in listing.content.decode()
    assert refund.sale.number in listing.content.decode()

    url = reverse("admin:refunds_refund_changelist")
    form = {"action": "settle_refused_part_offline", "_selected_action": [refund.pk]}
    confirm = clerk_client.post(url, form)
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "£8.00" in page and "Yes, it was given back" in page
    refund.refresh_from_db()
    assert refund.status == "pending"  # nothing happens before the confirmation

    with django_capture_on_commit_callbacks(execute=True):
        done = clerk_client.post(url, {**form, "confirm": "yes", "note": "cash at till 2"},
                                 follow=True)
    assert "recorded as given back offline" in done.content.decode()
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    last = refund.allocations.order_by("pk").last()
    assert last.gateway_reference == "offline by clerk: cash at till 2" and not last.online
    assert len(mailoutbox) == 1


def test_staff_without_the_refund_permission_have_no_such_action(viewer_client):
    response = viewer_client.get(reverse("admin:refunds_refund_changelist"))
    assert "settle_refused_part_offline" not in response.content.decode()


def test_a_declined_refund_whose_finalisation_was_lost_is_not_needs_attention(
    clerk_client, django_capture_on_commit_callbacks,
):
    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox")
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_create(sale_id=sale.pk).refund
    refund.allocations.update(status="failed")  # answered, its worker died before finalising
    listing = clerk_client.get(reverse("admin:refunds_refund_changelist") + "?attention=yes")
    assert listing.status_code == 200 and sale.number not in listing.content.decode()


def test_staff_find_an_alert_of_unknown_outcome_and_record_it_sent(
    admin_client, django_capture_on_commit_callbacks,
):
    from refunds.models import CustomerAlert

    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_create(sale_id=SaleFactory().pk,
                               options=RefundOptions(alert_customer=True)).refund
    alert = CustomerAlert.objects.filter(refund=refund).first()
    CustomerAlert.objects.filter(pk=alert.pk).update(
        status="unknown", last_error="Outcome unknown, not sent again: timed out")
    url = reverse("admin:refunds_customeralert_changelist")
    listing = admin_client.get(url + "?attention=yes").content.decode()
    assert "Outcome unknown" in listing and "mark_sent" in listing

    admin_client.post(url, {"action": "mark_sent", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.status == "sent" and alert.sent_at is not None
