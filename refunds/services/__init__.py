"""The refund and cancel operations: the one door admin, API and commands all use."""

from .alerts import alerts_build, alerts_queue
from .bulk_import import (
    BatchTooLargeError,
    BulkRecordsInvalidError,
    BulkResult,
    refunds_bulk_import,
    refunds_bulk_validate,
    refunds_import_refused,
    refunds_import_status,
)
from .cancel import CancelResult, sale_cancel, sale_cancel_preview
from .refund import (
    RefundOptions,
    RefundPlan,
    RefundResult,
    refund_create,
    refund_preview,
    request_fingerprint,
)
from .settle import refund_finalise, refund_settle

__all__ = [
    "BatchTooLargeError",
    "BulkRecordsInvalidError",
    "BulkResult",
    "CancelResult",
    "RefundOptions",
    "RefundPlan",
    "RefundResult",
    "alerts_build",
    "alerts_queue",
    "refund_create",
    "refund_finalise",
    "refund_preview",
    "refund_settle",
    "refunds_bulk_import",
    "refunds_bulk_validate",
    "refunds_import_refused",
    "refunds_import_status",
    "request_fingerprint",
    "sale_cancel",
    "sale_cancel_preview",
]
