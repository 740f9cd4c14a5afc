"""Fault tests: real Celery workers (tests/alerts/conftest.py), killed or cut off from
PostgreSQL or the broker at a point the test fixes (a row lock it holds, a marker file
an email backend acts on), never by timing luck. Each ends with the books checked
against the ledger rows (tests/books.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.db import connection

from refunds.models import Refund
from refunds.services import RefundOptions, refund_create
from tests.alerts.conftest import (  # noqa: F401  (fixtures used by the tests here)
    Worker,
    _database_url,
    celery_producer,
    celery_worker,
    redis_broker_url,
    running_worker,
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


@contextmanager
def worker_with_faults(base: Path, broker_url: str,
                       **env: str) -> Iterator[tuple[Worker, Path]]:
    """A worker whose fault backends (tests/faults/backends.py) act on marker files in
    the directory yielded beside it."""
    markers = base / "markers"
    markers.mkdir(parents=True)
    with running_worker(base / "worker", broker_url, FAULT_MARKER_DIR=str(markers),
                        **env) as faulty:
        yield faulty, markers


def refund_alerted_through(faulty: Worker, broker_url: str, sale_id: int) -> Refund:
    """A refund with an email and an SMS alert, its alerts sent by `faulty`."""
    with celery_producer(broker_url, queue=faulty.queue):
        return refund_create(sale_id=sale_id, options=RefundOptions(alert_customer=True)).refund
