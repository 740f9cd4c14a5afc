"""The Celery app. Broker from CELERY_BROKER_URL (Redis or RabbitMQ); with none set
(the embedded run) tasks run eagerly, in-process.

Worker:  celery -A backoffice worker -l info
Beat:    celery -A backoffice beat -l info   (or a worker with -B on a single machine)

Beat re-queues what a broker outage or a dead worker left pending: customer alerts
(every ALERTS_REQUEUE_INTERVAL seconds; alerts left "sending" by a dead sender become
"unknown" for staff, never resent) and online refunds that are not final, answered but
never finalised included (every REFUNDS_RESETTLE_INTERVAL seconds). Both are safe to
repeat. Redelivery of a dead worker's tasks: the Celery block of settings.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Seconds; kept out of Django settings so importing this module never loads them.
ALERTS_REQUEUE_INTERVAL = int(os.environ.get("ALERTS_REQUEUE_INTERVAL", "60"))
REFUNDS_RESETTLE_INTERVAL = int(os.environ.get("REFUNDS_RESETTLE_INTERVAL", "300"))

app.conf.beat_schedule = {
    "requeue-pending-alerts": {
        "task": "refunds.tasks.requeue_pending_alerts",
        "schedule": float(ALERTS_REQUEUE_INTERVAL),
        # A fresh alert is left to the on_commit hook that is queuing it right now.
        "kwargs": {"older_than": ALERTS_REQUEUE_INTERVAL},
        "options": {"expires": ALERTS_REQUEUE_INTERVAL},
    },
    "resettle-pending-refunds": {
        "task": "refunds.tasks.resettle_pending_refunds",
        "schedule": float(REFUNDS_RESETTLE_INTERVAL),
        "kwargs": {"older_than": REFUNDS_RESETTLE_INTERVAL},
        "options": {"expires": REFUNDS_RESETTLE_INTERVAL},
    },
}
