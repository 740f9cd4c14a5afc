"""refund_sale SALE [--item LINE_ID:QTY ...] [options] [--commit]

Prints what would be refunded; writes only with --commit, and then prints what it wrote.
Run again with the same --idempotency-key, it replays the first refund (exit 0).
"""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError

from backoffice.errors import REFUND_FAILED, DomainError
from refunds.models import RefundReason, RefundType, Source
from refunds.services import RefundOptions, refund_create, refund_preview

from ._common import domain_error, plan_lines, refund_lines, resolve_actor, resolve_sale


def pair(text: str) -> tuple[int, int]:
    try:
        left, right = text.split(":", 1)
        return int(left), int(right)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ID:NUMBER, got {text!r}") from None


class Command(BaseCommand):
    help = "Refund a sale in full, or --item LINE_ID:QTY by line. Writes only with --commit."

    def add_arguments(self, parser):
        parser.add_argument("sale", help="sale id, number (S-000123) or external id")
        parser.add_argument("--item", action="append", type=pair, default=[],
                            metavar="LINE_ID:QTY", help="a line and how many units (repeat)")
        parser.add_argument("--split", action="append", type=pair, default=[],
                            metavar="PAYMENT_ID:AMOUNT", help="how much goes back to a payment")
        parser.add_argument("--type", choices=[RefundType.REFUND, RefundType.BALANCE_REFUND],
                            default=RefundType.REFUND)
        parser.add_argument("--restock", action=argparse.BooleanOptionalAction, default=True)
        for flag in ("refund-processing-fee", "refund-reseller-fee", "refund-shipping"):
            parser.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction,
                                default=None,
                                help="default: yes when the refund empties the sale")
        parser.add_argument("--alert-customer", action=argparse.BooleanOptionalAction,
                            default=False)
        parser.add_argument("--online", action=argparse.BooleanOptionalAction, default=True)
        parser.add_argument("--reason", choices=RefundReason.values,
                            default=RefundReason.REQUESTED_BY_CUSTOMER)
        parser.add_argument("--note", default="")
        parser.add_argument("--batch-id", default="")
        parser.add_argument("--expected-refunded-amount", type=int, default=None)
        parser.add_argument("--idempotency-key", default=None)
        parser.add_argument("--user", default=None, help="username recorded as the actor")
        parser.add_argument("--commit", action="store_true", help="really refund")

    def handle(self, *args, **opts):
        sale_id = resolve_sale(opts["sale"])
        options = RefundOptions(
            type=opts["type"], restock=opts["restock"],
            refund_processing_fee=opts["refund_processing_fee"],
            refund_reseller_fee=opts["refund_reseller_fee"],
            refund_shipping=opts["refund_shipping"], alert_customer=opts["alert_customer"],
            online=opts["online"], reason=opts["reason"], note=opts["note"],
            batch_id=opts["batch_id"],
        )
        kwargs = dict(
            sale_id=sale_id, items=opts["item"] or None, options=options,
            splits=dict(opts["split"]) or None,
            expected_refunded_amount=opts["expected_refunded_amount"],
        )
        try:
            if not opts["commit"]:
                for line in plan_lines(refund_preview(**kwargs)):
                    self.stdout.write(line)
                self.stdout.write("dry run: nothing written (add --commit to refund)")
                return
            # No preview first: refund_create checks everything under the sale's lock, and
            # a repeat with the same --idempotency-key must replay the first refund, not
            # fail because the first one left nothing to refund.
            result = refund_create(
                **kwargs, idempotency_key=opts["idempotency_key"],
                actor=resolve_actor(opts["user"]), source=Source.COMMAND,
            )
        except DomainError as exc:
            raise domain_error(exc) from exc
        refund = result.refund
        refund.sale.refresh_from_db(fields=["status"])  # as it is now (replay, settlement)
        for line in refund_lines(refund):
            self.stdout.write(line)
        verb = "replayed" if result.replayed else "refunded"
        self.stdout.write(f"{verb}: refund {refund.pk} total {refund.total} status {refund.status}")
        if refund.status == "failed":
            raise CommandError(f"{REFUND_FAILED}: {refund.failure_reason}")
