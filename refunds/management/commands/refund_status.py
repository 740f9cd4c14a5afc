"""manage.py refund_status: the figures of GET /api/v2/refunds/status."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from refunds.services import refunds_import_status


class Command(BaseCommand):
    help = "Imported refunds: total live, last batch's size, last success and failure."

    def handle(self, *args, **options):
        status = refunds_import_status()
        for key in ("total", "last_batch_count", "last_success", "last_failure"):
            value = status[key]
            text = value.isoformat() if hasattr(value, "isoformat") else value
            self.stdout.write(f"{key}: {text}")
