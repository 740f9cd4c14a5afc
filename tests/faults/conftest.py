"""Fault tests: real Celery workers (tests/alerts/conftest.py), killed or cut off from
PostgreSQL or the broker at a point the test fixes (a row lock it holds, a marker file
an email backend acts on), never by timing luck. Each ends with the books checked
against the ledger rows (tests/books.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

from tests.alerts.conftest import (  # noqa: F401  (fixtures used by the tests here)
    _database_url,
    celery_worker,
    redis_broker_url,
    sms_outbox,
    worker,
)


def database_url() -> str:
    return _database_url()


@contextmanager
def sale_row_locked(sale_id: int) -> Iterator[psycopg.Connection]:
    """Hold the sale's row lock from another connection (as `SELECT ... FOR UPDATE` in
    psql would), until the block ends: whoever settles the sale waits for it."""
    with psycopg.connect(database_url()) as other:
        other.execute("SELECT id FROM sales_sale WHERE id = %s FOR UPDATE", [sale_id])
        yield other
        other.rollback()


def waiting_for_a_lock() -> int:
    """How many sessions of this test database wait for a lock right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]
