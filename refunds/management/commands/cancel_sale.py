"""cancel_sale SALE [--reason R] [--note N] [--no-restock] [--alert-customer] [--commit]"""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError

from backoffice.errors import REFUND_FAILED, DomainError
from refunds.models import Source
from refunds.services import sale_cancel, sale_cancel_preview
from sales.models import CancelReason

from ._common import domain_error, plan_lines, refund_lines, resolve_actor, resolve_sale


class Command(BaseCommand):
    help = "Cancel a sale: refund what was paid, restock. Writes only with --commit."

    def add_arguments(self, parser):
        parser.add_argument("sale", help="sale id, number (S-000123) or external id")
        parser.add_argument("--reason", choices=CancelReason.values, default=CancelReason.OTHER)
        parser.add_argument("--note", default="", help="staff note; the customer never sees it")
        parser.add_argument("--restock", action=argparse.BooleanOptionalAction, default=True)
        parser.add_argument("--alert-customer", action=argparse.BooleanOptionalAction,
                            default=False)
        parser.add_argument("--user", default=None, help="username recorded as the actor")
        parser.add_argument("--commit", action="store_true", help="really cancel")

    def handle(self, *args, **opts):
        sale_id = resolve_sale(opts["sale"])
        try:
            if not opts["commit"]:
                plan = sale_cancel_preview(sale_id=sale_id, restock=opts["restock"],
                                           reason=opts["reason"], note=opts["note"])
                if plan is None:
                    self.stdout.write("already cancelled: nothing to do")
                    return
                for line in plan_lines(plan):
                    self.stdout.write(line)
                self.stdout.write("dry run: nothing written (add --commit to cancel)")
                return
            # sale_cancel checks everything under the sale's lock; a sale already
            # cancelled is no error (it does nothing more).
            result = sale_cancel(
                sale_id=sale_id, reason=opts["reason"], note=opts["note"],
                restock=opts["restock"], alert_customer=opts["alert_customer"],
                actor=resolve_actor(opts["user"]), source=Source.COMMAND,
            )
        except DomainError as exc:
            raise domain_error(exc) from exc
        if result.already:
            self.stdout.write("already cancelled: nothing to do")
            return
        refund = result.refund
        if refund is None:
            sale = result.sale
            self.stdout.write(f"sale: {sale.number} (id {sale.pk}, {sale.status})")
            self.stdout.write(f"cancelled: {sale.number} nothing was paid, no refund")
            return
        # An online refund may already have been settled (eager tasks): say how it ended.
        refund.refresh_from_db(fields=["status", "settled_at", "failure_reason"])
        result.sale.refresh_from_db(fields=["status"])
        for line in refund_lines(refund):
            self.stdout.write(line)
        self.stdout.write(f"cancelled: {result.sale.number} refund {refund.pk} "
                          f"total {refund.total} status {refund.status}")
        if refund.status == "failed":
            raise CommandError(f"{REFUND_FAILED}: {refund.failure_reason} "
                               f"(sale {result.sale.number} is not cancelled)")
