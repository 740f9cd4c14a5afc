"""The books checked against the ledger rows, for tests that race, fail or compensate.

Every counter a refund moves is recomputed from the rows of the refunds still standing
("live": pending or succeeded; a failed refund was compensated and counts for nothing):

- a sale line's refunded_quantity / refunded_amount / refunded_tax == the sum of the
  refund lines of its live refunds;
- a payment's refunded_amount == the sum of the allocations of live refunds;
- a sale's amount_refunded, refunded_units and refunded fees == the sums over its live
  refunds;
- a live refund that moves money has allocations that add up to its total;
- a failed refund has no allocation other than failed, and no alert sent.

`books_differences()` returns one sentence per difference (also used by bench/faults.py);
`assert_books_balance()` fails the test with all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q, Sum

from refunds.models import (
    AlertStatus,
    AllocationStatus,
    CustomerAlert,
    Refund,
    RefundLine,
    RefundPayment,
    RefundStatus,
    RefundType,
)
from sales.models import Payment, Sale, SaleLine

LIVE = (RefundStatus.PENDING, RefundStatus.SUCCEEDED)
SALE_SUMS = {  # sale counter -> refund field
    "amount_refunded": "total", "refunded_units": "units",
    "refunded_processing_fee": "processing_fee", "refunded_reseller_fee": "reseller_fee",
    "refunded_shipping_fee": "shipping_fee",
}
LINE_SUMS = {"refunded_quantity": "quantity", "refunded_amount": "amount",
             "refunded_tax": "tax_amount"}


def _compare(what: str, counters: dict[int, Any], ledger: dict[int, Any],
             pairs: dict[str, str]) -> list[str]:
    problems = []
    for pk, row in counters.items():
        sums = ledger.get(pk, {})
        for counter, field in pairs.items():
            expected = sums.get(field) or 0
            if row[counter] != expected:
                problems.append(f"{what} {pk}: {counter} is {row[counter]}, the ledger says "
                                f"{expected}")
    return problems


def books_differences(*, sale_ids: Iterable[int] | None = None) -> list[str]:
    """Every difference between the counters and the ledger rows (all sales, or these)."""
    sales = Sale.objects.all() if sale_ids is None else Sale.objects.filter(pk__in=sale_ids)
    ids = list(sales.values_list("pk", flat=True))
    live = Q(refund__status__in=LIVE)
    problems = _compare(
        "sale line",
        {r["pk"]: r for r in SaleLine.objects.filter(sale_id__in=ids).values("pk", *LINE_SUMS)},
        {r["sale_line_id"]: r for r in RefundLine.objects.filter(live, sale_line__sale_id__in=ids)
         .values("sale_line_id").annotate(**{f: Sum(f) for f in LINE_SUMS.values()})},
        LINE_SUMS,
    )
    problems += _compare(
        "payment",
        {r["pk"]: r for r in Payment.objects.filter(sale_id__in=ids).values(
            "pk", "refunded_amount")},
        {r["payment_id"]: r for r in RefundPayment.objects.filter(live, payment__sale_id__in=ids)
         .values("payment_id").annotate(amount=Sum("amount"))},
        {"refunded_amount": "amount"},
    )
    problems += _compare(
        "sale",
        {r["pk"]: r for r in sales.values("pk", *SALE_SUMS)},
        {r["sale_id"]: r for r in Refund.objects.filter(sale_id__in=ids, status__in=LIVE)
         .values("sale_id").annotate(**{f: Sum(f) for f in SALE_SUMS.values()})},
        SALE_SUMS,
    )
    moving = (Refund.objects.filter(sale_id__in=ids, status__in=LIVE)
              .exclude(type=RefundType.BALANCE_REFUND).exclude(total=0)
              .annotate(allocated=Sum("allocations__amount")))
    problems += [f"refund {r.pk}: allocations add up to {r.allocated}, its total is {r.total}"
                 for r in moving if r.allocated != r.total]
    failed = Refund.objects.filter(sale_id__in=ids, status=RefundStatus.FAILED)
    problems += [
        f"failed refund {pk}: an allocation is still {status}"
        for pk, status in RefundPayment.objects.filter(refund__in=failed)
        .exclude(status=AllocationStatus.FAILED).values_list("refund_id", "status")
    ]
    problems += [
        f"failed refund {pk}: its alert {alert} was sent"
        for alert, pk in CustomerAlert.objects.filter(refund__in=failed, status=AlertStatus.SENT)
        .values_list("pk", "refund_id")
    ]
    return problems


def assert_books_balance(*, sale_ids: Iterable[int] | None = None) -> None:
    problems = books_differences(sale_ids=sale_ids)
    assert not problems, "the books do not match the ledger:\n" + "\n".join(problems)
