"""The suite checks the books: after a test that races, fails or compensates, every
counter must still be what the ledger rows say (refunds/services/audit.py, the code
behind `manage.py audit_books`), and a failed refund must have left nothing behind: no
allocation other than failed, no alert sent."""

from __future__ import annotations

from collections.abc import Iterable

from refunds.models import AlertStatus, AllocationStatus, CustomerAlert, RefundPayment, RefundStatus
from refunds.services.audit import books_audit


def books_differences(sale_ids: Iterable[int] | None = None) -> list[str]:
    """One line per difference between the counters and the ledger (all sales, or these)."""
    ids = None if sale_ids is None else list(sale_ids)
    problems = [d.line() for d in books_audit(ids)]
    failed = RefundPayment.objects.filter(refund__status=RefundStatus.FAILED)
    alerts = CustomerAlert.objects.filter(refund__status=RefundStatus.FAILED,
                                          status=AlertStatus.SENT)
    if ids is not None:
        failed = failed.filter(refund__sale_id__in=ids)
        alerts = alerts.filter(refund__sale_id__in=ids)
    problems += [
        f"failed refund {pk}: an allocation is still {status}"
        for pk, status in failed.exclude(status=AllocationStatus.FAILED)
        .values_list("refund_id", "status")
    ]
    problems += [f"failed refund {pk}: its alert {alert} was sent"
                 for alert, pk in alerts.values_list("pk", "refund_id")]
    return problems


def assert_books_balance(sale_ids: Iterable[int] | None = None) -> None:
    """Fail, listing each difference, unless every counter matches the ledger."""
    problems = books_differences(sale_ids)
    assert not problems, "the books do not balance:\n" + "\n".join(problems)
