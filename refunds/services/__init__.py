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
from .ledger import Effect, effect_of_plan, effect_of_refund, ledger_write
from .plan import RefundOptions, RefundPlan, plan_refund, refund_preview
from .refund import RefundResult, refund_create, request_fingerprint
from .settle import refund_finalise, refund_settle

__all__ = [
    "BatchTooLargeError",
    "BulkRecordsInvalidError",
    "BulkResult",
    "CancelResult",
    "Effect",
    "RefundOptions",
    "RefundPlan",
    "RefundResult",
    "alerts_build",
    "alerts_queue",
    "effect_of_plan",
    "effect_of_refund",
    "ledger_write",
    "plan_refund",
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
