"""The Refund… page: form, live preview (server side), confirm, stale form refused."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse

from refunds.admin.refund_page import STALE_FORM
from refunds.models import CustomerAlert, Refund
from refunds.services import refund_create
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def _form(sale, **fields):
    data = {"type": "refund", "restock": "on", "online": "on",
            "reason": "requested_by_customer", "note": "",
            "expected_refunded_amount": sale.amount_refunded}
    data.update(fields)
    return data


def test_refund_page_shows_one_row_per_line_with_max(clerk_client, sale_factory):
    sale = sale_factory(lines=[(3, 1200), (1, 500)])
    first, second = sale.lines.order_by("pk")
    html = clerk_client.get(reverse("admin:sales_sale_refund", args=[sale.pk])).content.decode()
    assert f'name="qty_{first.pk}"' in html and 'max="3"' in html
    assert f'name="qty_{second.pk}"' in html and 'max="1"' in html
    assert 'name="expected_refunded_amount" value="0"' in html
    payment = sale.payments.get()
    assert f'name="split_{payment.pk}"' in html
    assert re.search(r'name="restock"[^>]*checked', html)  # default: restock
    assert re.search(r'name="online"[^>]*checked', html)
    assert not re.search(r'name="alert_customer"[^>]*checked', html)


def test_preview_returns_the_service_amounts_and_writes_nothing(clerk_client, sale_factory):
    sale = sale_factory(lines=[(3, 1200)])
    line = sale.lines.get()
    response = clerk_client.post(reverse("admin:sales_sale_refund_preview", args=[sale.pk]),
                                 _form(sale, **{f"qty_{line.pk}": 2}))
    body = response.json()
    assert body["ok"] is True
    assert body["total"] == 2880  # 2 x 12.00 + 20% tax
    assert "£28.80" in body["html"]
    payment = sale.payments.get()
    assert body["allocations"] == {str(payment.pk): "28.80"}
    assert not Refund.objects.exists()


def test_preview_with_nothing_entered_asks_for_quantities(clerk_client, paid_sale):
    body = clerk_client.post(reverse("admin:sales_sale_refund_preview", args=[paid_sale.pk]),
                             _form(paid_sale)).json()
    assert body["ok"] is False
    assert "Enter the quantities" in body["html"]


def test_preview_shows_the_service_error_in_plain_words(clerk_client, sale_factory):
    sale = sale_factory(lines=[(3, 1200)])
    line = sale.lines.get()
    body = clerk_client.post(reverse("admin:sales_sale_refund_preview", args=[sale.pk]),
                             _form(sale, **{f"qty_{line.pk}": 5})).json()
    assert body["ok"] is False
    assert body["code"] == "refund_quantity_exceeded"
    assert "only 3 left to refund" in body["html"]


def test_confirm_refunds_two_units_with_restock_and_alert(clerk_client, clerk, sale_factory):
    product = ProductFactory(stock=10)
    sale = sale_factory(lines=[(3, 1200)], product=product)
    line = sale.lines.get()
    response = clerk_client.post(reverse("admin:sales_sale_refund", args=[sale.pk]),
                                 _form(sale, alert_customer="on", **{f"qty_{line.pk}": 2}))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:sales_sale_change", args=[sale.pk])
    refund = Refund.objects.get()
    assert (refund.total, refund.units, refund.source, refund.created_by) == (
        2880, 2, "admin", clerk)
    line.refresh_from_db()
    product.refresh_from_db()
    assert line.refunded_quantity == 2
    assert product.stock == 9  # 10 - 3 sold + 2 back
    assert CustomerAlert.objects.filter(refund=refund).exists()
    page = clerk_client.get(response["Location"]).content.decode()
    assert "Refund #" in page and "£28.80" in page and "credit note" in page


def test_resubmitted_form_is_refused_not_refunded_twice(clerk_client, sale_factory):
    sale = sale_factory(lines=[(3, 1200)])
    line = sale.lines.get()
    data = _form(sale, **{f"qty_{line.pk}": 1})
    url = reverse("admin:sales_sale_refund", args=[sale.pk])
    assert clerk_client.post(url, data).status_code == 302
    again = clerk_client.post(url, data)  # the same form, sent again
    assert again.status_code == 200
    assert STALE_FORM in again.content.decode()
    assert Refund.objects.count() == 1


def test_stale_form_is_shown_again_with_the_current_figures_and_a_second_confirm_works(
        clerk_client, sale_factory):
    sale = sale_factory(lines=[(3, 1200)])
    line = sale.lines.get()
    opened = _form(sale, **{f"qty_{line.pk}": 1})  # the page as it was opened
    refund_create(sale_id=sale.pk, items={line.pk: 1})  # meanwhile, someone else refunds
    url = reverse("admin:sales_sale_refund", args=[sale.pk])
    refused = clerk_client.post(url, opened)
    assert refused.status_code == 200
    html = refused.content.decode()
    # Said once, in plain words: no banner repeating the form's error.
    assert html.count(STALE_FORM) == 1
    assert not list(get_messages(refused.wsgi_request))
    assert "changed since you looked" not in html
    # The form carries what is refunded now, with the entries kept.
    assert 'name="expected_refunded_amount" value="1440"' in html
    assert re.search(rf'name="qty_{line.pk}"[^>]*value="1"', html)
    assert "Already refunded is now £14.40; it was £0.00 when you opened the page." in html
    form = refused.context["form"]
    assert form["expected_refunded_amount"].value() == "1440"
    # Confirming that page again refunds.
    again = {**opened, "expected_refunded_amount": form["expected_refunded_amount"].value()}
    assert clerk_client.post(url, again).status_code == 302
    assert Refund.objects.count() == 2


def test_refused_refund_is_reported_once_not_as_banner_and_form_error(clerk_client,
                                                                      sale_factory):
    sale = sale_factory(lines=[(2, 1000)], payments=[
        {"amount": 1400, "method": "card"}, {"amount": 1000, "method": "cash"}])
    line = sale.lines.get()
    card = sale.payments.order_by("pk").first()
    response = clerk_client.post(reverse("admin:sales_sale_refund", args=[sale.pk]),
                                 _form(sale, **{f"qty_{line.pk}": 1, f"split_{card.pk}": "5.00"}))
    assert response.status_code == 200
    assert not list(get_messages(response.wsgi_request))  # no banner
    assert response.context["form"].errors  # the form says it
    assert not Refund.objects.exists()


def test_preview_shows_a_placed_error_on_its_row_only(clerk_client, sale_factory):
    sale = sale_factory(lines=[(3, 1200), (2, 500)])
    first, second = sale.lines.order_by("pk")
    body = clerk_client.post(reverse("admin:sales_sale_refund_preview", args=[sale.pk]),
                             _form(sale, **{f"qty_{first.pk}": 1,
                                            f"qty_{second.pk}": 9})).json()
    assert body["ok"] is False and body["code"] == "refund_quantity_exceeded"
    # One error, on the line it names (with its label); the whole message not repeated.
    assert body["html"].count('class="errornote"') == 1
    assert "Item 2: only 2 left to refund" in body["html"]
    assert "items[" not in body["html"]
    # An error that names no row is still said, once.
    body = clerk_client.post(reverse("admin:sales_sale_refund_preview", args=[sale.pk]),
                             _form(sale, expected_refunded_amount=5,
                                   **{f"qty_{first.pk}": 1})).json()
    assert body["code"] == "stale_refund_state"
    assert body["html"].count('class="errornote"') == 1


def test_checkbox_labels_have_no_colon(clerk_client, supervisor_client, paid_sale):
    pages = [
        clerk_client.get(reverse("admin:sales_sale_refund", args=[paid_sale.pk])),
        supervisor_client.get(reverse("admin:sales_sale_cancel", args=[paid_sale.pk])),
        supervisor_client.post(reverse("admin:sales_sale_changelist"), {
            "action": "cancel_selected", ACTION_CHECKBOX_NAME: [paid_sale.pk]}),
        clerk_client.post(reverse("admin:sales_sale_changelist"), {
            "action": "refund_selected_in_full", ACTION_CHECKBOX_NAME: [paid_sale.pk]}),
    ]
    for page in pages:
        html = page.content.decode()
        assert "back in stock</label>" in html
        assert not re.search(r"(stock|SMS\)|gateway):</label>", html)
        assert re.search(r"Reason:</label>", html)  # other fields keep theirs


@pytest.mark.parametrize("name", ["admin:sales_sale_refund", "admin:sales_sale_cancel"])
def test_refund_and_cancel_pages_name_the_sale_once(supervisor_client, sale_factory, name):
    sale = sale_factory(external_id="WEB-77")
    html = supervisor_client.get(reverse(name, args=[sale.pk])).content.decode()
    content = html[html.index('<div id="content"'):]  # below the breadcrumbs
    assert content.count(sale.number) == 1  # the title: "Refund S-…" / "Cancel S-…"
    assert f"<h2>{sale.number}</h2>" not in html
    assert "WEB-77" in content


def test_too_many_units_shown_on_the_line(clerk_client, sale_factory):
    sale = sale_factory(lines=[(3, 1200), (2, 100)])
    first, second = sale.lines.order_by("pk")
    response = clerk_client.post(reverse("admin:sales_sale_refund", args=[sale.pk]),
                                 _form(sale, **{f"qty_{first.pk}": 1, f"qty_{second.pk}": 4}))
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors[f"qty_{second.pk}"] == ["only 2 left to refund"]
    assert not Refund.objects.exists()


def test_nothing_entered_is_an_error_not_a_full_refund(clerk_client, paid_sale):
    response = clerk_client.post(reverse("admin:sales_sale_refund", args=[paid_sale.pk]),
                                 _form(paid_sale))
    assert response.status_code == 200
    assert "at least one line" in response.content.decode()
    assert not Refund.objects.exists()


def test_custom_split_must_add_up(clerk_client, sale_factory):
    sale = sale_factory(lines=[(2, 1000)], payments=[
        {"amount": 1400, "method": "card"}, {"amount": 1000, "method": "cash"}])
    line = sale.lines.get()
    card, cash = sale.payments.order_by("pk")
    url = reverse("admin:sales_sale_refund", args=[sale.pk])
    bad = clerk_client.post(url, _form(sale, **{f"qty_{line.pk}": 1, f"split_{card.pk}": "5.00"}))
    assert bad.status_code == 200 and "add up" in bad.content.decode()
    good = clerk_client.post(url, _form(sale, **{f"qty_{line.pk}": 1, f"split_{card.pk}": "2.00",
                                                 f"split_{cash.pk}": "10.00"}))
    assert good.status_code == 302
    card.refresh_from_db()
    cash.refresh_from_db()
    assert (card.refunded_amount, cash.refunded_amount) == (200, 1000)


def test_not_an_amount_is_a_field_error(clerk_client, paid_sale):
    line = paid_sale.lines.get()
    payment = paid_sale.payments.get()
    response = clerk_client.post(reverse("admin:sales_sale_refund", args=[paid_sale.pk]),
                                 _form(paid_sale, **{f"qty_{line.pk}": 1,
                                                     f"split_{payment.pk}": "lots"}))
    assert "is not an amount" in response.content.decode()


def test_balance_refund_credits_the_store_balance(clerk_client, paid_sale):
    line = paid_sale.lines.get()
    response = clerk_client.post(reverse("admin:sales_sale_refund", args=[paid_sale.pk]),
                                 _form(paid_sale, type="balance_refund", **{f"qty_{line.pk}": 1}))
    assert response.status_code == 302
    paid_sale.customer.refresh_from_db()
    assert paid_sale.customer.store_balance == 1440


def test_unknown_sale_is_404(clerk_client):
    assert clerk_client.get(reverse("admin:sales_sale_refund", args=[999999])).status_code in (
        302, 404)
