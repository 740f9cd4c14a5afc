"""Every machine code the product answers, declared once: a code never changes once
released. Domain errors carry a code, a human sentence and the HTTP status the API answers
with (admin, API and commands all render these); the codes the API layer itself answers
(DRF's refusals, the middleware, the dialects) are the named constants below. The README's
error-code table lists exactly `ERROR_CODES` (tests/test_error_codes.py checks both ways)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Codes the API layer answers without a domain error -----------------------------------
INVALID = "invalid"  # a field is missing or malformed (DRF's ValidationError too)
MALFORMED = "malformed"  # the body is not JSON (DRF's ParseError)
BAD_REQUEST = "bad_request"  # Django refused the request before any view (backoffice/views.py)
# A key a request carries that the operation does not understand: refused by name, never
# ignored (backoffice/api/strict.py; the bulk record parser; the dialects).
UNKNOWN_FIELD = "unknown_field"
INVALID_RECORDS = "invalid_records"  # bulk: some records refused, nothing written
PERMISSION_DENIED = "permission_denied"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
NOT_ACCEPTABLE = "not_acceptable"
BATCH_TOO_LARGE = "batch_too_large"  # bulk: more records than one request takes
PAYLOAD_TOO_LARGE = "payload_too_large"  # backoffice/middleware.py
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
THROTTLED = "throttled"
SERVER_ERROR = "server_error"
# A status >= 400 some view answered outside the envelope (the renderer wraps it).
ERROR = "error"
# The dialects' own codes for a missing or bad key (the native answer has no code).
UNAUTHENTICATED = "unauthenticated"  # Nuweb
AUTHENTICATION_INVALID = "authentication_invalid"  # the orders API

# The status each of those is answered with (ERROR: whatever the view answered).
API_CODES: dict[str, int] = {
    INVALID: 400, MALFORMED: 400, BAD_REQUEST: 400, UNKNOWN_FIELD: 400, INVALID_RECORDS: 400,
    UNAUTHENTICATED: 401, AUTHENTICATION_INVALID: 401, PERMISSION_DENIED: 403,
    NOT_FOUND: 404, METHOD_NOT_ALLOWED: 405, NOT_ACCEPTABLE: 406, BATCH_TOO_LARGE: 413,
    PAYLOAD_TOO_LARGE: 413, UNSUPPORTED_MEDIA_TYPE: 415, THROTTLED: 429, SERVER_ERROR: 500,
    ERROR: 400,
}

# Codes of Django form and model ValidationErrors: read by the admin's forms, never
# answered as an API code (the API reports such a field as `invalid`).
NO_ITEMS = "no_items"  # the refund page was posted with no quantity on any line
EXTERNAL_ID_LIKE_NUMBER = "external_id_like_number"

# The commands' refusal of a refund the gateway refused (`refund_failed: <reason>`).
REFUND_FAILED = "refund_failed"
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
    code = INVALID
    status = 400


class NotFoundError(DomainError):
    code = NOT_FOUND
    status = 404


class SaleNotFoundError(NotFoundError):
    code = "sale_not_found"


class RefundNotFoundError(NotFoundError):
    code = "refund_not_found"


class ConnectionNotFoundError(NotFoundError):
    """The orders API: a connection id that is not the requesting key's own."""

    code = "connection_not_found"


class UnknownVersionError(NotFoundError):
    """Klar: an API version in the path that is malformed or older than the first one."""

    code = "unknown_version"


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


class SaleIsQuoteError(DomainError):
    code = "sale_is_quote"


class SaleHasRefundsError(DomainError):
    code = "sale_has_refunds"


class NoCustomerForBalanceError(DomainError):
    code = "no_customer_for_balance"


class RefundNotAwaitingActionError(DomainError):
    """Settle offline: the refund has no refused part waiting to be given back."""

    code = "refund_not_awaiting_action"


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


def _domain_errors(cls: type[DomainError] = DomainError) -> list[type[DomainError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_domain_errors(sub)]
    return found


# Every code the product answers, with its status: the domain errors declared above (their
# bases' placeholder code aside) and the API layer's. Computed when this module loads, so
# a DomainError subclass declared elsewhere cannot add a code behind the table's back.
ERROR_CODES: dict[str, int] = {
    **API_CODES,
    **{cls.code: cls.status for cls in _domain_errors() if cls.code != DomainError.code},
}
