"""Cancel… page and the list actions (delete_selected's two POSTs)."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse

from refunds.models import CustomerAlert, Refund
from refunds.services import RefundOptions, refund_create
from sales.models import Sale, SaleStatus

pytestmark = pytest.mark.django_db


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_cancel_page_shows_what_will_be_refunded(supervisor_client, sale_factory):
    sale = sale_factory(lines=[(2, 1000)])
    response = supervisor_client.get(reverse("admin:sales_sale_cancel", args=[sale.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "£24.00" in html and 'name="reason"' in html
    assert re.search(r'name="restock"[^>]*checked', html)


def test_cancel_page_cancels_with_reason_note_and_alert(supervisor_client, supervisor,
                                                        sale_factory):
    sale = sale_factory(lines=[(2, 1000)])
    response = supervisor_client.post(reverse("admin:sales_sale_cancel", args=[sale.pk]), {
        "reason": "fraud", "note": "stolen card", "restock": "on", "alert_customer": "on"})
    assert response.status_code == 302
    sale.refresh_from_db()
    assert sale.status == SaleStatus.CANCELLED
    c = sale.cancellation
    assert (c.reason, c.note, c.cancelled_by) == ("fraud", "stolen card", supervisor)
    refund = Refund.objects.get(sale=sale)
    assert refund.type == "cancellation" and refund.total == 2400
    assert CustomerAlert.objects.filter(sale=sale, event="sale_cancelled").exists()
    assert any("cancelled; £24.00 refunded" in m for m in _messages(response))


def test_cancel_page_of_a_partly_refunded_sale_says_why_not(supervisor_client, sale_factory):
    sale = sale_factory(lines=[(2, 1000)])
    refund_create(sale_id=sale.pk, items={sale.lines.get().pk: 1}, options=RefundOptions())
    response = supervisor_client.get(reverse("admin:sales_sale_cancel", args=[sale.pk]))
    assert "refund the rest instead" in response.content.decode()
    refused = supervisor_client.post(reverse("admin:sales_sale_cancel", args=[sale.pk]),
                                     {"reason": "customer"})
    assert refused.status_code == 200
    assert "refund the rest instead" in refused.content.decode()
    sale.refresh_from_db()
    assert sale.status == SaleStatus.PARTIALLY_REFUNDED


def test_cancel_action_first_post_is_a_confirmation_page(supervisor_client, sale_factory):
    sales = [sale_factory() for _ in range(3)]
    response = supervisor_client.post(reverse("admin:sales_sale_changelist"), {
        "action": "cancel_selected", ACTION_CHECKBOX_NAME: [s.pk for s in sales]})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cancel these sales?" in html
    assert 'name="post" value="yes"' in html and 'name="alert_customer"' in html
    for sale in sales:
        assert sale.number in html
    assert Sale.objects.filter(status=SaleStatus.CANCELLED).count() == 0


def test_cancel_action_second_post_cancels_each_and_reports_each(supervisor_client,
                                                                 sale_factory):
    ok1, ok2 = sale_factory(), sale_factory(paid=False)
    partly = sale_factory(lines=[(2, 1000)])
    refund_create(sale_id=partly.pk, items={partly.lines.get().pk: 1}, options=RefundOptions())
    response = supervisor_client.post(reverse("admin:sales_sale_changelist"), {
        "action": "cancel_selected", ACTION_CHECKBOX_NAME: [ok1.pk, ok2.pk, partly.pk],
        "post": "yes", "reason": "inventory", "restock": "on", "alert_customer": "on"})
    assert response.status_code == 302
    for sale in (ok1, ok2):
        sale.refresh_from_db()
        assert sale.status == SaleStatus.CANCELLED and sale.cancellation.reason == "inventory"
    partly.refresh_from_db()
    assert partly.status == SaleStatus.PARTIALLY_REFUNDED  # its own transaction failed alone
    messages = _messages(response)
    assert any(ok1.number in m and "refunded" in m for m in messages)
    assert any(ok2.number in m and "nothing had been paid" in m for m in messages)
    assert any(partly.number in m and "not cancelled" in m for m in messages)
    assert any("2 of 3 sale(s) cancelled" in m for m in messages)


def test_refund_action_confirmation_then_refunds_each_in_full(clerk_client, sale_factory):
    a = sale_factory(lines=[(1, 1000)], shipping_fee=500)
    b = sale_factory(lines=[(2, 500)])
    url = reverse("admin:sales_sale_changelist")
    first = clerk_client.post(url, {"action": "refund_selected_in_full",
                                    ACTION_CHECKBOX_NAME: [a.pk, b.pk]})
    html = first.content.decode()
    assert first.status_code == 200 and "Refund these sales in full?" in html
    assert "£17.00" in html  # 10.00 + 2.00 tax + 5.00 shipping
    assert f'name="expected_{a.pk}" value="0"' in html
    second = clerk_client.post(url, {
        "action": "refund_selected_in_full", ACTION_CHECKBOX_NAME: [a.pk, b.pk],
        "post": "yes", "reason": "duplicate", "restock": "on", "online": "on",
        f"expected_{a.pk}": 0, f"expected_{b.pk}": 0})
    assert second.status_code == 302
    for sale in (a, b):
        sale.refresh_from_db()
        assert sale.status == SaleStatus.REFUNDED
    assert Refund.objects.filter(reason="duplicate").count() == 2
    assert any("2 of 2 sale(s) refunded in full" in m for m in _messages(second))


def test_refund_action_with_a_stale_confirmation_page_refunds_nothing(clerk_client,
                                                                      sale_factory):
    sale = sale_factory(lines=[(2, 1000)])
    refund_create(sale_id=sale.pk, items={sale.lines.get().pk: 1}, options=RefundOptions())
    response = clerk_client.post(reverse("admin:sales_sale_changelist"), {
        "action": "refund_selected_in_full", ACTION_CHECKBOX_NAME: [sale.pk], "post": "yes",
        "reason": "duplicate", f"expected_{sale.pk}": 0})
    assert Refund.objects.count() == 1
    assert any("changed since you looked" in m for m in _messages(response))


def test_cancel_action_works_from_the_orders_list(supervisor_client, sale_factory):
    order = sale_factory(channel="api", external_id="API-7")
    response = supervisor_client.post(reverse("admin:sales_order_changelist"), {
        "action": "cancel_selected", ACTION_CHECKBOX_NAME: [order.pk], "post": "yes",
        "reason": "customer"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == SaleStatus.CANCELLED


def test_cancel_confirmation_says_what_will_happen(supervisor_client, sale_factory):
    paid = sale_factory(lines=[(2, 1000)])
    unpaid = sale_factory(paid=False)
    mixed = sale_factory(lines=[(1, 1000)], payments=[
        {"amount": 200, "method": "cash"}, {"amount": 1000, "method": "card"}])
    html = supervisor_client.post(reverse("admin:sales_sale_changelist"), {
        "action": "cancel_selected", ACTION_CHECKBOX_NAME: [paid.pk, unpaid.pk, mixed.pk],
    }).content.decode()
    assert "Will be cancelled; £24.00 goes back (Card)" in html
    assert "Will be cancelled; nothing was paid, so nothing goes back" in html
    assert "Will be cancelled; £12.00 goes back (Cash £2.00, Card £10.00)" in html
    assert "Cancelled;" not in html  # nothing has happened yet


def test_refund_confirmation_says_what_will_happen(clerk_client, sale_factory):
    sale = sale_factory(lines=[(1, 1000)], shipping_fee=500)
    html = clerk_client.post(reverse("admin:sales_sale_changelist"), {
        "action": "refund_selected_in_full", ACTION_CHECKBOX_NAME: [sale.pk],
    }).content.decode()
    assert "Will be refunded in full; £17.00 goes back (Card £17.00)" in html


def test_cancel_reports_the_refund_status_as_it_is_after_settlement(supervisor_client,
                                                                     sale_factory,
                                                                     monkeypatch):
    """The service returns its refund before the gateway answers (a worker settles it on
    commit): the summary reads the status from the database, not from that object."""
    import refunds.admin.cancel_page
    import refunds.admin.sales
    from refunds.services import sale_cancel
    from refunds.services.settle import refund_settle

    def cancel_then_settle(**kwargs):
        result = sale_cancel(**kwargs)
        assert result.refund.status == "pending"  # what the service returned
        refund_settle(refund_id=result.refund.pk)  # the worker answers meanwhile
        return result

    monkeypatch.setattr(refunds.admin.sales, "sale_cancel", cancel_then_settle)
    monkeypatch.setattr(refunds.admin.cancel_page, "sale_cancel", cancel_then_settle)
    listed = sale_factory(lines=[(2, 1500)], gateway="sandbox")
    paged = sale_factory(lines=[(1, 900)], gateway="sandbox")
    response = supervisor_client.post(reverse("admin:sales_sale_changelist"), {
        "action": "cancel_selected", ACTION_CHECKBOX_NAME: [listed.pk], "post": "yes",
        "reason": "customer"})
    assert f"{listed.number}: cancelled; £36.00 refunded (succeeded)." in _messages(response)
    response = supervisor_client.post(reverse("admin:sales_sale_cancel", args=[paged.pk]),
                                      {"reason": "customer"})
    assert f"{paged.number}: cancelled; £10.80 refunded (succeeded)." in _messages(response)
    assert set(Refund.objects.values_list("status", flat=True)) == {"succeeded"}
