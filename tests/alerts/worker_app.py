"""The project's Celery app with this test session's own default queue, for the worker
the tests start (`celery -A tests.alerts.worker_app worker`): what the worker queues
itself (an alert once a refund settled, a retry) stays in the session's queue."""

import os

from backoffice.celery import app

app.conf.task_default_queue = os.environ["ALERTS_TEST_QUEUE"]

__all__ = ["app"]
