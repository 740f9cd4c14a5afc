"""manage.py audit_books [--sale SALE ...]: recompute every counter from the ledger rows.

Prints one line per difference (`model=ID sale=ID field=NAME stored=X ledger=Y`) and a
last `differences: N` line. Exit codes: 0 the books balance, 1 differences found,
2 a sale that does not exist was named.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from refunds.services.audit import books_audit_iter

from ._common import resolve_sale


class Command(BaseCommand):
    help = ("Recompute every counter (lines, payments, fees, sales' totals and status, store "
            "balances) from the ledger rows; print each difference; exit 1 if any.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--sale", action="append", metavar="SALE",
            help="Check only this sale (id, number or external id); may be repeated.",
        )

    def handle(self, *args, **options):
        sale_ids = None
        if options["sale"]:
            try:
                sale_ids = [resolve_sale(ident) for ident in options["sale"]]
            except CommandError as exc:
                raise CommandError(str(exc), returncode=2) from exc
        found = 0
        for difference in books_audit_iter(sale_ids):
            found += 1
            self.stdout.write(difference.line())
        self.stdout.write(f"differences: {found}")
        if found:
            raise CommandError(f"the books do not balance: {found} difference(s)", returncode=1)
