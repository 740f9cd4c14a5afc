"""End-to-end tests in a real browser: Debian's chromium driven by Playwright.

The `browser` fixture (tests/conftest.py) launches /usr/bin/chromium; without it (or
without the playwright package) these tests skip locally and FAIL when the CI
environment variable is set. Screenshots of every screen go to
test-output/e2e/ (gitignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "e2e"


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """No collectstatic in tests: the plain storage serves from the apps' static dirs."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1360, "height": 900},
                                  base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


@pytest.fixture
def shot():
    """shot(page, "01-sale") saves test-output/e2e/01-sale.png (the whole page)."""
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
