"""manage.py import_refunds FILE [--validate-only] [--source NAME]

FILE is a JSON array of bulk refund records (README, "Bulk refund records"). Batches of
up to 1000 records are each all or nothing; a refused batch stops the import with a
non-zero exit, naming the records and fields at fault.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from backoffice.errors import DomainError
from refunds.models import Source
from refunds.services import refunds_bulk_import, refunds_bulk_validate
from refunds.services.bulk_import import DEFAULT_IMPORT_SOURCE


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else width
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total}"


class Command(BaseCommand):
    help = "Import (or with --validate-only, check) a JSON file of refund records."

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSON file (an array of records); - for stdin.")
        parser.add_argument("--validate-only", action="store_true",
                            help="Check the records as the import would; write nothing.")
        parser.add_argument("--source", default=DEFAULT_IMPORT_SOURCE,
                            help="Namespace of the records' ids (default: %(default)s).")
        parser.add_argument("--batch-size", type=int, default=1000,
                            help="Records per transaction (at most 1000).")

    def handle(self, *args, file: str, validate_only: bool, source: str, batch_size: int,
               **options):
        try:
            stream = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
            with stream:
                records = json.load(stream)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        if not isinstance(records, list):
            raise CommandError("The file must hold a JSON array of refund records.")
        batch_size = max(1, min(batch_size, 1000))
        total = len(records)
        counts = {"created": 0, "replaced": 0, "withdrawn": 0, "unchanged": 0}
        done = 0
        self.stderr.write(_bar(0, total), ending="\r")
        for start in range(0, total or 1, batch_size):
            batch = records[start:start + batch_size]
            try:
                if validate_only:
                    result = refunds_bulk_validate(records=batch, import_source=source)
                else:
                    result = refunds_bulk_import(records=batch, import_source=source,
                                                 door=Source.COMMAND)
            except DomainError as exc:
                self.stderr.write("")
                for rec in getattr(exc, "records", None) or []:
                    for field, msgs in rec["errors"].items():
                        self.stdout.write(
                            f"record {start + rec['index']} (id {rec['id']}) {field}: "
                            f"{'; '.join(msgs)}"
                        )
                raise CommandError(
                    f"Refused ({exc.code}) in records {start}-{start + len(batch) - 1}: "
                    f"{exc.message}" + ("" if validate_only else
                                        f" {done} record(s) before them were imported.")
                ) from exc
            for key in counts:
                counts[key] += getattr(result, key)
            done += len(batch)
            self.stderr.write(_bar(done, total), ending="\r")
        self.stderr.write("")
        verb = "valid" if validate_only else "imported"
        self.stdout.write(
            f"{total} record(s) {verb}: created {counts['created']}, replaced "
            f"{counts['replaced']}, withdrawn {counts['withdrawn']}, unchanged "
            f"{counts['unchanged']}"
        )
