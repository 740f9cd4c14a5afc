"""Shared fixtures. Tests that need PostgreSQL use the `postgres` fixture: they skip on
SQLite locally, and FAIL (never skip) when the CI environment variable is set."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from .factories import CustomerFactory, SaleFactory, UserFactory

# Browser tests (tests/e2e, tests/production/test_csp_browser.py): Debian's chromium,
# driven by Playwright; never `playwright install` (its download does not work here).
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _browser_unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"Browser tests cannot run: {reason}. CI must not skip them.")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """One chromium for the whole session: Playwright's sync API allows one instance per
    thread (a second one would find the first one's event loop running)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not os.path.exists(CHROMIUM):
        _browser_unavailable(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests
    # make alongside it are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True, scope="session")
def _celery_eager_by_default():
    """Tasks run in-process unless a test starts a real worker (tests/alerts/test_worker.py
    points its producer at that worker's broker). CI exports CELERY_BROKER_URL for those;
    without this, every other test would leave tasks on a queue nobody reads."""
    from backoffice.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old


@pytest.fixture
def postgres(db):
    if connection.vendor != "postgresql":
        if os.environ.get("CI"):
            pytest.fail("This test needs PostgreSQL (set DATABASE_URL); CI must not skip it.")
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://...")
    return connection


@pytest.fixture
def staff_user(db):
    return UserFactory(username="staff", is_superuser=True)


@pytest.fixture
def customer(db):
    return CustomerFactory()


@pytest.fixture
def paid_sale(db):
    """3 × 1200 at 20% tax, paid in full by card (offline)."""
    return SaleFactory(lines=[(3, 1200)])


@pytest.fixture
def sale_factory(db):
    return SaleFactory


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    """Throttle counts live in the cache (per client address too, and the test client is
    always 127.0.0.1): each test starts with none."""
    from django.core.cache import cache

    cache.clear()
