"""The staff's lists fit a 1360 px wide window: no sideways scrolling, in a real browser."""

from __future__ import annotations

import re

import pytest

from refunds.services import RefundOptions, refund_create
from tests.factories import CustomerFactory, SaleFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery"

LISTS = [
    "/admin/sales/sale/",
    "/admin/sales/order/",
    "/admin/refunds/refund/",
    "/admin/refunds/customeralert/",
    "/admin/sales/payment/",
    "/admin/refunds/refundpayment/",
    "/admin/refunds/refundline/",
]

# How wide the list is against the room it has: #changelist, and the table's own box
# (Django lets .results scroll sideways inside #changelist).
WIDTHS = """() => {
  const box = document.querySelector('#changelist');
  const results = document.querySelector('#changelist .results');
  return {scroll: box.scrollWidth, client: box.clientWidth,
          resultsScroll: results.scrollWidth, resultsClient: results.clientWidth};
}"""


def _busy_shop():
    """Sales of every kind and channel, long customer names, big amounts, refunds of
    every status and source, with alerts."""
    names = ["Bartholomew Montgomery-Smythe", "Ada Lovelace", "Henrietta Featherstonehaugh"]
    for i in range(12):
        name = names[i % len(names)]
        customer = CustomerFactory(
            name=name, email=f"{name.lower().replace(' ', '.')}.{i}@example.com")
        sale = SaleFactory(
            lines=[(3, 123_456), (2, 9_999)], customer=customer,
            kind=["receipt", "invoice"][i % 2],
            channel=["pos", "storefront", "api", "manual"][i % 4],
            external_id=f"WEB-2026-{i:06d}", gateway="sandbox",
        )
        if i % 3:
            refund_create(sale_id=sale.pk, items={sale.lines.order_by("pk").first().pk: 1},
                          options=RefundOptions(reason="requested_by_customer",
                                                alert_customer=True,
                                                batch_id=f"BATCH-{i:04d}-2026-12"))


def test_every_list_fits_1360_px(page, live_server, shot):
    UserFactory(username="boss", is_superuser=True)
    _busy_shop()
    assert page.viewport_size == {"width": 1360, "height": 900}
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
    for url in LISTS:
        page.goto(url)
        page.wait_for_selector("#result_list")
        widths = page.evaluate(WIDTHS)
        shot(page, "30-list" + url.replace("/admin", "").replace("/", "-").rstrip("-"))
        assert widths["scroll"] <= widths["client"], (url, widths)
        assert widths["resultsScroll"] <= widths["resultsClient"], (url, widths)
    assert not page.js_errors
