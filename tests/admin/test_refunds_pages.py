"""Refunds list, credit note, import page, dashboard."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from refunds.models import Refund, RefundImport
from refunds.selectors import refund_dashboard
from refunds.services import RefundOptions, refund_create, sale_cancel

pytestmark = pytest.mark.django_db


def test_refunds_list_filters_and_searches(admin_client, sale_factory, staff_user):
    a = sale_factory(lines=[(2, 1000)])
    b = sale_factory(lines=[(2, 1000)])
    refund_create(sale_id=a.pk, items={a.lines.get().pk: 1},
                  options=RefundOptions(reason="damaged", batch_id="B-1"), actor=staff_user)
    refund_create(sale_id=b.pk, items={b.lines.get().pk: 1},
                  options=RefundOptions(reason="duplicate"), actor=staff_user)
    url = reverse("admin:refunds_refund_changelist")
    html = admin_client.get(url).content.decode()
    assert a.number in html and b.number in html and "Damaged" in html
    html = admin_client.get(url, {"reason": "damaged"}).content.decode()
    assert a.number in html and b.number not in html
    html = admin_client.get(url, {"batch": "B-1"}).content.decode()
    assert a.number in html and b.number not in html
    html = admin_client.get(url, {"q": b.number}).content.decode()
    assert b.number in html and a.number not in html
    for params in ({"type__exact": "refund"}, {"status__exact": "succeeded"},
                   {"online__exact": "0"}, {"batch": "__none__"}):
        assert admin_client.get(url, params).status_code == 200


@override_settings(SHOP_NAME="Ada's Pottery")
def test_credit_note_has_shop_sale_lines_taxes_fees_total_and_payments(admin_client,
                                                                      sale_factory):
    sale = sale_factory(lines=[(2, 1000)], shipping_fee=499)
    refund = refund_create(sale_id=sale.pk).refund  # everything: lines + shipping
    response = admin_client.get(reverse("admin:refunds_refund_credit_note", args=[refund.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Ada&#x27;s Pottery" in html
    assert sale.number in html and "Item 1" in html
    assert "£20.00" in html and "£4.00" in html and "£4.99" in html
    assert "£28.99" in html  # total
    assert "Card" in html and "offline" in html
    css = settings.BASE_DIR / "static/backoffice/css/credit_note.css"
    assert "size: A4" in css.read_text()


def test_credit_note_of_a_cancellation(admin_client, sale_factory):
    sale = sale_factory()
    refund = sale_cancel(sale_id=sale.pk, reason="customer").refund
    html = admin_client.get(
        reverse("admin:refunds_refund_credit_note", args=[refund.pk])).content.decode()
    assert "Cancellation" in html and "Customer changed their mind" in html


def test_clerk_can_print_a_credit_note(clerk_client, paid_sale):
    refund = refund_create(sale_id=paid_sale.pk).refund
    assert clerk_client.get(
        reverse("admin:refunds_refund_credit_note", args=[refund.pk])).status_code == 200


def _upload(client, records, name="refunds.json"):
    return client.post(reverse("admin:refunds_refund_import"), {
        "file": SimpleUploadedFile(name, json.dumps(records).encode(), "application/json")})


def test_import_validates_then_imports_on_confirm(supervisor_client, sale_factory):
    sale = sale_factory(lines=[(3, 1200)])
    line = sale.lines.get()
    records = [{"id": "mkt-1", "sale_id": sale.pk, "reason": "damaged", "restock": False,
                "line_items": [{"item_id": line.pk, "quantity": 1}]}]
    report = _upload(supervisor_client, records)
    html = report.content.decode()
    assert report.status_code == 200 and "mkt-1" in html and "OK" in html
    assert 'name="confirm" value="yes"' in html
    assert not Refund.objects.exists()  # validation writes nothing
    done = supervisor_client.post(reverse("admin:refunds_refund_import"), {
        "confirm": "yes", "records": report.context["records_json"]})
    assert done.status_code == 200 and "Imported" in done.content.decode()
    refund = Refund.objects.get()
    assert refund.external_id == "mkt-1" and refund.units == 1
    assert RefundImport.objects.get().outcome == "success"


def test_import_report_shows_each_bad_record(supervisor_client, sale_factory):
    sale = sale_factory(lines=[(1, 1200)])
    line = sale.lines.get()
    records = [
        {"id": "ok-1", "sale_id": sale.pk, "line_items": [{"item_id": line.pk, "quantity": 1}]},
        {"id": "bad-1", "sale_id": sale.pk, "line_items": [{"item_id": line.pk, "quantity": 0}]},
        {"id": "bad-2", "sale_id": "NOPE", "line_items": []},
    ]
    html = _upload(supervisor_client, records).content.decode()
    assert "bad-1" in html and "bad-2" in html and "bo-row-error" in html
    assert 'name="confirm"' not in html  # nothing to confirm while a record is refused
    assert not Refund.objects.exists()


def test_import_of_a_file_that_is_not_json(supervisor_client):
    response = supervisor_client.post(reverse("admin:refunds_refund_import"), {
        "file": SimpleUploadedFile("x.json", b"{nope", "application/json")})
    assert "not valid JSON" in response.content.decode()


def test_dashboard_figures(sale_factory, staff_user):
    a = sale_factory(lines=[(2, 1000)])
    sale_factory()
    refund_create(sale_id=a.pk, items={a.lines.get().pk: 1},
                  options=RefundOptions(reason="damaged"), actor=staff_user)
    dash = refund_dashboard()
    today, week, month = dash.periods
    assert today.count == week.count == month.count == 1
    assert today.totals == [("GBP", 1200, "£12.00")]
    assert dash.sales_in_window == 2 and dash.refunded_sales_in_window == 1
    assert dash.refund_rate == 0.5
    assert dash.top_reasons == [("Damaged", 1)]
    assert len(dash.series["labels"]) == 30 and dash.series["counts"][-1] == 1
    assert dash.series["amounts"][-1] == 12.0


def test_dashboard_on_the_admin_index(admin_client, paid_sale):
    refund_create(sale_id=paid_sale.pk)
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="bo-dashboard"' in html and "Refund rate" in html
    assert "backoffice/vendor/chartjs/chart.umd.min.js" in html
    assert "cdn" not in html.lower()


def test_dashboard_hidden_from_staff_who_cannot_see_refunds(viewer_client):
    html = viewer_client.get(reverse("admin:index")).content.decode()
    assert 'id="bo-dashboard"' not in html


def _partly_refunded(sale_factory, staff_user):
    """A sale paid £10.00 cash + £33.20 card, one unit refunded (£14.40) for damage."""
    sale = sale_factory(lines=[{"quantity": 3, "unit_price": 1200, "description": "Notebook A5",
                                "sku": "NB-A5", "tax_rate": "0.20"}],
                        payments=[{"amount": 1000, "method": "cash"},
                                  {"amount": 3320, "method": "card"}])
    refund = refund_create(sale_id=sale.pk, items={sale.lines.get().pk: 1},
                           options=RefundOptions(reason="damaged"), actor=staff_user).refund
    return sale, refund


def test_refund_page_groups_its_fields_and_shows_money_and_words(admin_client, sale_factory,
                                                                 staff_user):
    sale, refund = _partly_refunded(sale_factory, staff_user)
    html = admin_client.get(
        reverse("admin:refunds_refund_change", args=[refund.pk])).content.decode()
    assert f"Refund #{refund.pk} of {sale.number}" in html  # title and breadcrumb
    for heading in ("Amounts", "Options as asked", "Settlement", "Import and batch"):
        assert f">{heading}<" in html
    assert "£12.00" in html and "£2.40" in html and "£14.40" in html
    assert '<div class="readonly">1440</div>' not in html  # no minor units
    assert '<div class="readonly">1200</div>' not in html
    assert "Damaged" in html and '<div class="readonly">damaged</div>' not in html
    # Inlines: rows headed in words, money formatted.
    assert re.search(r"1 × Notebook A5\s", html)
    assert re.search(r"£[\d.]+ to Cash \(succeeded\)\s", html)
    assert "Cash £10.00</a>" in html and "Card £33.20</a>" in html  # the payment column
    assert '<td class="field-amount"><p>1200</p></td>' not in html


def test_refund_lines_payments_and_payments_lists_show_money(admin_client, sale_factory,
                                                             staff_user):
    sale, refund = _partly_refunded(sale_factory, staff_user)
    lines = admin_client.get(reverse("admin:refunds_refundline_changelist")).content.decode()
    assert f"Refund #{refund.pk} of {sale.number}" in lines
    assert "£12.00" in lines and "£2.40" in lines and "Notebook A5" in lines
    assert ">1200<" not in lines and ">240<" not in lines
    allocations = admin_client.get(
        reverse("admin:refunds_refundpayment_changelist")).content.decode()
    assert "Card £33.20" in allocations and "Cash £10.00" in allocations
    assert f"Refund #{refund.pk} of {sale.number}" in allocations
    amounts = [a.amount for a in refund.allocations.all()]
    assert all(f">{amount}<" not in allocations for amount in amounts)
    payments = admin_client.get(reverse("admin:sales_payment_changelist")).content.decode()
    assert "£33.20" in payments and "£10.00" in payments
    assert ">3320<" not in payments and ">1000<" not in payments
    payment = sale.payments.order_by("pk").last()
    page = admin_client.get(
        reverse("admin:sales_payment_change", args=[payment.pk])).content.decode()
    assert "£33.20" in page and '<div class="readonly">3320</div>' not in page


def test_refunds_list_fits_without_id_creator_and_batch_columns(admin_client, sale_factory,
                                                               staff_user):
    sale, refund = _partly_refunded(sale_factory, staff_user)
    response = admin_client.get(reverse("admin:refunds_refund_changelist"))
    html = response.content.decode()
    for column in ("id", "created_by", "batch_id"):
        assert f'class="column-{column}' not in html
        assert f'class="field-{column}' not in html
    assert 'class="field-created_display' in html  # the short date links to the refund
    assert reverse("admin:refunds_refund_change", args=[refund.pk]) in html
    assert "?batch=__any__" in html and "?source__exact=admin" in html  # filters kept


def test_import_report_numbers_records_from_1_in_words_and_names_sales(supervisor_client,
                                                                        sale_factory):
    sale = sale_factory(lines=[(1, 1200)], external_id="WEB-5")
    line = sale.lines.get()
    records = [
        {"id": "ok-1", "sale_id": sale.pk, "line_items": [{"item_id": line.pk, "quantity": 1}]},
        {"id": "bad-1", "order_id": "WEB-5",
         "line_items": [{"item_id": line.pk, "quantity": 0}]},
    ]
    html = _upload(supervisor_client, records).content.decode()
    report = html[html.index('id="bo-import-report"'):]
    assert "Record 1" in report and "Record 2" in report and "<td>0</td>" not in report
    assert "Line 1, quantity: " in report
    assert "line_items[" not in html and "[0]" not in html and "[1]" not in html
    assert report.count(f"<td>{sale.number}</td>") == 2  # by id and by external id
    assert "1 of 2 records refused; nothing was written." in html
