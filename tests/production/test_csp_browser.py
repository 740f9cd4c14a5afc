"""The admin works under the Content Security Policy in a real browser (Debian's
chromium via Playwright): the dashboard draws its chart, the refund page fetches its live
preview, and the browser reports no policy violation on the way."""

from __future__ import annotations

import re

import pytest

from tests.factories import SaleFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.violations = []
    page.on(
        "console",
        lambda msg: (
            page.violations.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    page.on("pageerror", lambda exc: page.violations.append(f"page error: {exc}"))
    yield page
    context.close()


def test_dashboard_chart_and_refund_preview_work_under_the_policy(page):
    UserFactory(username="csp-boss", is_superuser=True)
    sale = SaleFactory(lines=[(3, 1200)])
    line = sale.lines.get()

    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "csp-boss")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
    page.wait_for_selector("#bo-refund-chart[data-chart-ready=yes]")

    page.goto(f"/admin/sales/sale/{sale.pk}/refund/")
    page.fill(f"input[name=qty_{line.pk}]", "1")
    # (a selector, not wait_for_function: that evaluates a string, which the policy's
    # script-src refuses, as it should)
    page.wait_for_selector("#bo-refund-form[data-preview-ready=yes]")
    assert "£14.40" in page.inner_text("#bo-preview")  # 1 x £12.00 + 20% tax, via fetch()

    assert page.violations == []


def test_the_api_docs_render_under_the_policy(page):
    page.goto("/api/v2/docs/")
    # Swagger UI started (its script served from this origin) and drew the schema's
    # operations, with no policy violation on the way.
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    assert "Backoffice API" in page.inner_text(".swagger-ui .info")
    assert page.violations == []
