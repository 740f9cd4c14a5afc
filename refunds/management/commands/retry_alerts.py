"""Queue again the customer alerts left pending (the broker was down, a worker died).

    manage.py retry_alerts                   # every pending alert that can be sent
    manage.py retry_alerts --older-than 300  # only those pending for 5 minutes or more
    manage.py retry_alerts --refunds         # also online refunds not settled yet

Safe to repeat: sending claims the alert and skips it unless pending. Alerts left
"sending" by a sender that died are marked "unknown" (outcome unknown: staff check and
resend or record them sent), never sent again. `--refunds` queues the settlement of
every online refund that is not final: still waiting for its gateway, or answered but
never finalised.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from refunds.services.alerts import alerts_requeue
from refunds.services.settle import refunds_resettle


class Command(BaseCommand):
    help = "Queue again customer alerts left pending (and, with --refunds, pending refunds)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=0, metavar="SECONDS",
                            help="Only what has been pending at least this long (default 0).")
        parser.add_argument("--limit", type=int, default=1000,
                            help="At most this many alerts (default 1000).")
        parser.add_argument("--refunds", action="store_true",
                            help="Also queue again online refunds not settled yet.")

    def handle(self, *args, older_than, limit, refunds, **options):
        age = timedelta(seconds=older_than)
        result = alerts_requeue(older_than=age, limit=limit)
        self.stdout.write(f"alerts pending: {result.found}")
        self.stdout.write(f"alerts queued: {result.queued}")
        self.stdout.write(f"alerts of unknown outcome (for staff): {result.unknown}")
        missed = result.found - result.queued
        if refunds:
            queued = refunds_resettle(older_than=age)
            self.stdout.write(f"refunds queued: {queued}")
        if missed:
            raise CommandError(
                f"{missed} alert(s) could not be queued: is the broker (CELERY_BROKER_URL) up?"
            )
