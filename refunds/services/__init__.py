"""The refund and cancel operations: the one door admin, API and commands all use."""

from .alerts import alerts_build, alerts_queue
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
    "request_fingerprint",
    "sale_cancel",
    "sale_cancel_preview",
]
