"""Domain errors: a machine code that never changes once released, a human sentence,
and the HTTP status the API answers with. Admin, API and commands all render these."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# A key a request carries that the operation does not understand: refused by name, never
# ignored (backoffice/api/strict.py; the bulk record parser; the dialects).
UNKNOWN_FIELD = "unknown_field"
UNKNOWN_FIELD_MESSAGE = "Unknown field: this endpoint does not take it."


def unknown_keys(data: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    """The keys of `data` not in `known`, in the order they were sent."""
    allowed = set(known)
    return [key for key in data if key not in allowed]


class DomainError(Exception):
    code = "domain_error"
    status = 422

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        # Field errors, keyed by the request's field path: {"items[0].quantity": ["..."]}.
        self.extra = extra or {}

    def __str__(self) -> str:
        return self.message


class ValidationFailedError(DomainError):
    code = "invalid"
    status = 400


class NotFoundError(DomainError):
    code = "not_found"
    status = 404


class SaleNotFoundError(NotFoundError):
    code = "sale_not_found"


class ConflictError(DomainError):
    status = 409


class SaleCancelledError(DomainError):
    code = "sale_cancelled"


class SaleNotCancellableError(DomainError):
    code = "sale_not_cancellable"


class SaleNotRefundableError(DomainError):
    code = "sale_not_refundable"


class SaleNotEditableError(DomainError):
    code = "sale_not_editable"


class NothingToRefundError(DomainError):
    code = "nothing_to_refund"


class UnknownLineError(DomainError):
    code = "unknown_line"


class UnknownPaymentError(DomainError):
    code = "unknown_payment"


class RefundQuantityExceededError(DomainError):
    code = "refund_quantity_exceeded"


class RefundExceedsPaidError(DomainError):
    code = "refund_exceeds_paid"


class SplitMismatchError(DomainError):
    code = "split_mismatch"


class SplitExceedsPaymentError(DomainError):
    code = "split_exceeds_payment"


class PaymentExceedsBalanceError(DomainError):
    code = "payment_exceeds_balance"


class AmbiguousSaleError(ConflictError):
    """A name (id, number or external id) that means more than one sale."""

    code = "ambiguous_sale"


class DuplicateExternalIdError(ConflictError):
    code = "duplicate_external_id"


class IdempotencyKeyReusedError(DomainError):
    code = "idempotency_key_reused"


class IdempotencyKeyInUseError(ConflictError):
    code = "idempotency_key_in_use"


class StaleRefundStateError(ConflictError):
    code = "stale_refund_state"


class ConstraintViolationError(DomainError):
    """A database constraint refused a write the checks let through (a race lost)."""

    code = "constraint_violation"
