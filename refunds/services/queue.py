"""Work the services hand to the workers: the one module that reaches the tasks.

Services never import `refunds.tasks` (the tasks import the services); they queue work
here. The tasks module is imported inside `_tasks()` only, the one place a service
reaches it (the tasks import the services inside their bodies; tests/test_layout.py
keeps both rules). A broker that is down never
breaks the caller's committed work: what was not queued stays pending in the database
and beat queues it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)


def _tasks() -> ModuleType:
    from .. import tasks  # the one lazy import (see the top of this module)

    return tasks


def enqueue_each(task: Any, ids: Iterable[Any], *, what: str) -> int:
    """`task.delay(pk)` for each id; stop at the first broker error. Returns how many
    were queued. What was not queued stays pending in the database: beat re-queues it."""
    queued = 0
    for pk in ids:
        try:
            task.delay(pk)
        except Exception:  # Broker down: never breaks the caller's (committed) work.
            log.warning("could not queue %s %s; it stays pending", what, pk, exc_info=True)
            break
        queued += 1
    return queued


def queue_settlement(refund_id: int) -> None:
    """Settle the refund with the gateway once the current transaction commits.

    robust: a broker that is down must not turn a committed refund into an error; it
    stays pending and beat re-queues its settlement (resettle_pending_refunds)."""
    transaction.on_commit(lambda: _tasks().settle_refund.delay(refund_id), robust=True)


def queue_settlements(refund_ids: Iterable[int]) -> int:
    """Queue these refunds' settlement now (beat's re-queue). Returns how many."""
    return enqueue_each(_tasks().settle_refund, refund_ids, what="settlement of refund")


def queue_alerts(ids: list[int]) -> None:
    """Send these alerts (a refund's or a cancel's: one per channel) once the current
    transaction commits, in one task message."""
    if ids:
        transaction.on_commit(
            lambda: enqueue_each(_tasks().send_customer_alerts, [ids], what="customer alerts"),
            robust=True,
        )


def queue_alerts_each(ids: Iterable[int]) -> int:
    """Queue one task per alert now (the re-queue of alerts left pending)."""
    return enqueue_each(_tasks().send_customer_alert, ids, what="customer alert")


__all__ = ["enqueue_each", "queue_alerts", "queue_alerts_each", "queue_settlement",
           "queue_settlements"]
