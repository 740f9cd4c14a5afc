"""The suite checks the books: after a test that races, fails or compensates, every
counter must still be what the ledger rows say (refunds/services/audit.py)."""

from __future__ import annotations

from collections.abc import Iterable

from refunds.services.audit import books_audit


def assert_books_balance(sale_ids: Iterable[int] | None = None) -> None:
    """Fail, listing each difference, unless every counter matches the ledger."""
    differences = books_audit(sale_ids)
    assert not differences, "the books do not balance:\n" + "\n".join(
        d.line() for d in differences
    )
