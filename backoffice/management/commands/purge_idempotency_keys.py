"""Delete idempotency keys older than settings.IDEMPOTENCY_KEY_TTL_DAYS (at least 7)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from backoffice.models import IdempotencyKey


class Command(BaseCommand):
    help = "Purge idempotency keys past their retention (kept at least 7 days)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=settings.IDEMPOTENCY_KEY_TTL_DAYS)

    def handle(self, *args, **opts):
        days = max(7, opts["days"])
        cutoff = timezone.now() - timedelta(days=days)
        deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"purged: {deleted} keys older than {days} days")
