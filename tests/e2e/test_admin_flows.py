"""A refund clerk refunds part of a sale; a supervisor cancels sales from the list.

Real browser (chromium via Playwright) against the live server; a screenshot of every
screen under test-output/e2e/.
"""

from __future__ import annotations

import json
import re

import pytest

from refunds.models import CustomerAlert, Refund
from refunds.services.roles import REFUND_CLERKS, SUPERVISORS, roles_ensure
from sales.models import SaleStatus
from tests.factories import ProductFactory, SaleFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery"


def _staff(username: str, group: str):
    user = UserFactory(username=username)
    user.groups.add(roles_ensure()[group])
    return user


def _login(page, username: str):
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))


def test_clerk_refunds_two_units_with_restock_and_alert(page, shot):
    clerk = _staff("clerk", REFUND_CLERKS)
    mug = ProductFactory(sku="MUG-1", name="Mug", stock=10)
    sale = SaleFactory(lines=[{"quantity": 3, "unit_price": 1200, "description": "Blue mug",
                               "sku": "MUG-1", "product_id": mug.pk, "tax_rate": "0.20"},
                              {"quantity": 1, "unit_price": 500, "description": "Gift wrap",
                               "sku": "WRAP", "tax_rate": "0.20"}],
                       external_id="WEB-1001")
    SaleFactory()  # another sale in the list
    mug_line = sale.lines.get(sku="MUG-1")

    _login(page, "clerk")
    shot(page, "01-clerk-dashboard")

    page.goto("/admin/sales/sale/")
    page.fill("#searchbar", "WEB-1001")
    page.press("#searchbar", "Enter")
    page.wait_for_selector(f"text={sale.number}")
    shot(page, "02-clerk-sales-list-search")
    page.click(f"a:text('{sale.number}')")
    page.wait_for_selector("text=Refund…")
    assert page.locator("text=Cancel…").count() == 0  # a clerk cannot cancel
    shot(page, "03-clerk-sale-page")

    page.click("text=Refund…")
    page.wait_for_selector("#bo-refund-form")
    shot(page, "04-clerk-refund-page")

    page.fill(f"input[name=qty_{mug_line.pk}]", "2")
    assert page.is_checked("input[name=restock]")  # the default
    page.check("input[name=alert_customer]")
    page.wait_for_selector("#bo-preview-total")
    page.wait_for_function(
        "document.getElementById('bo-refund-form').getAttribute('data-preview-ready') === 'yes'"
    )
    preview = page.inner_text("#bo-preview")
    assert "£28.80" in page.inner_text("#bo-preview-total")  # 2 x £12.00 + 20% tax
    assert "Blue mug" in preview and "Card £28.80" in preview
    assert "The customer will be told." in preview
    assert "The units go back in stock." in preview
    payment = sale.payments.get()
    assert page.get_attribute(f"input[name=split_{payment.pk}]", "placeholder") == "28.80"
    assert not Refund.objects.exists()  # the preview wrote nothing
    shot(page, "05-clerk-refund-preview")

    page.click("#bo-confirm")
    page.wait_for_selector("ul.messagelist li.success")
    message = page.inner_text("ul.messagelist")
    assert "Refund #" in message and "£28.80" in message
    shot(page, "06-clerk-sale-after-refund")

    refund = Refund.objects.get()
    assert (refund.units, refund.total, refund.restock, refund.alert_customer) == (
        2, 2880, True, True)
    assert refund.created_by == clerk and refund.source == "admin"
    mug_line.refresh_from_db()
    mug.refresh_from_db()
    sale.refresh_from_db()
    payment.refresh_from_db()
    assert mug_line.refunded_quantity == 2
    assert mug.stock == 9  # 10 - 3 sold + 2 restocked
    assert sale.amount_refunded == 2880 and sale.status == SaleStatus.PARTIALLY_REFUNDED
    assert payment.refunded_amount == 2880
    assert CustomerAlert.objects.filter(refund=refund).exists()
    # The sale's page shows the new counters.
    lines_table = page.inner_text("#lines-group")
    assert re.search(r"Blue mug\s+3\s+2", lines_table)

    with page.expect_popup() as popup:
        page.click("text=Print the credit note")
    note = popup.value
    note.wait_for_selector("#cn-total")
    assert note.inner_text("#cn-total") == "£28.80"
    assert "Blue mug" in note.inner_text("main")
    shot(note, "07-clerk-credit-note")
    assert not page.js_errors


def test_supervisor_cancels_sales_from_the_list_action(page, shot):
    supervisor = _staff("supervisor", SUPERVISORS)
    first = SaleFactory(lines=[(2, 1500)])
    second = SaleFactory(lines=[(1, 900)], paid=False)
    untouched = SaleFactory()

    _login(page, "supervisor")
    page.goto("/admin/sales/sale/")
    page.check(f"input[name=_selected_action][value='{first.pk}']")
    page.check(f"input[name=_selected_action][value='{second.pk}']")
    page.select_option("select[name=action]", "cancel_selected")
    shot(page, "10-supervisor-sales-list-selected")
    page.click("button[name=index]")

    page.wait_for_selector("text=Cancel these sales?")
    rows = page.inner_text("#bo-action-rows")
    assert first.number in rows and second.number in rows
    assert "Will be cancelled; £36.00 goes back (Card)" in rows
    page.select_option("select[name=reason]", "inventory")
    page.check("input[name=alert_customer]")
    shot(page, "11-supervisor-cancel-confirmation")
    page.click("#bo-confirm-action")

    page.wait_for_selector("ul.messagelist")
    messages = page.inner_text("ul.messagelist")
    assert "2 of 2 sale(s) cancelled" in messages
    assert f"{first.number}: cancelled; £36.00 refunded" in messages
    shot(page, "12-supervisor-after-cancel")

    for sale in (first, second):
        sale.refresh_from_db()
        assert sale.status == SaleStatus.CANCELLED
        assert sale.cancellation.reason == "inventory"
        assert sale.cancellation.cancelled_by == supervisor
    untouched.refresh_from_db()
    assert untouched.status == SaleStatus.PAID
    assert CustomerAlert.objects.filter(sale=first, event="sale_cancelled").exists()

    page.goto("/admin/")
    page.wait_for_selector("#bo-refund-chart[data-chart-ready=yes]")
    assert page.inner_text("#bo-dashboard .bo-card[data-period='1'] .bo-card-value") == "1"
    shot(page, "13-supervisor-dashboard")
    assert not page.js_errors


def test_pages_a_supervisor_uses_and_a_viewer_is_refused(page, shot, tmp_path):
    _staff("supervisor", SUPERVISORS)
    sale = SaleFactory(lines=[(2, 1500)], shipping_fee=499)
    refunded = SaleFactory(lines=[(3, 1000)])
    line = refunded.lines.get()

    _login(page, "supervisor")
    page.goto(f"/admin/sales/sale/{sale.pk}/cancel/")
    page.wait_for_selector("#bo-cancel-total")
    assert page.inner_text("#bo-cancel-total") == "£40.99"
    shot(page, "20-supervisor-cancel-page")

    records = tmp_path / "refunds.json"
    good = {"id": "mkt-1", "sale_id": refunded.pk, "reason": "damaged", "restock": False,
            "line_items": [{"item_id": line.pk, "quantity": 1}]}
    too_many = {"id": "mkt-2", "sale_id": refunded.pk,
                "line_items": [{"item_id": line.pk, "quantity": 9}]}
    records.write_text(json.dumps([good, too_many]))
    page.goto("/admin/refunds/refund/import/")
    page.set_input_files("input[name=file]", str(records))
    page.click("#bo-check-import")
    page.wait_for_selector("#bo-import-report")
    assert "mkt-2" in page.inner_text("#bo-import-report .bo-row-error")
    shot(page, "21-supervisor-import-report-refused")
    records.write_text(json.dumps([good]))
    page.set_input_files("input[name=file]", str(records))
    page.click("#bo-check-import")
    page.wait_for_selector("#bo-confirm-import")
    shot(page, "22-supervisor-import-report-valid")
    page.click("#bo-confirm-import")
    page.wait_for_selector("#bo-import-result")
    shot(page, "23-supervisor-import-result")
    assert Refund.objects.filter(external_id="mkt-1").exists()

    page.context.clear_cookies()
    viewer = UserFactory(username="viewer")
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(*Permission.objects.filter(codename="view_sale"))
    _login(page, "viewer")
    page.goto(f"/admin/sales/sale/{sale.pk}/change/")
    assert page.locator("text=Refund…").count() == 0
    assert page.locator("text=Cancel…").count() == 0
    shot(page, "24-viewer-sale-page-without-buttons")
    response = page.goto(f"/admin/sales/sale/{sale.pk}/refund/")
    assert response.status == 403
    response = page.goto(f"/admin/sales/sale/{sale.pk}/cancel/")
    assert response.status == 403
    assert not page.js_errors
