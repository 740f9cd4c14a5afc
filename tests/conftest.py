"""Shared fixtures. Tests that need PostgreSQL use the `postgres` fixture: they skip on
SQLite locally, and FAIL (never skip) when the CI environment variable is set."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from .factories import CustomerFactory, SaleFactory, UserFactory


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
