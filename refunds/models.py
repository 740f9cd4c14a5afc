"""Refunds and their ledger: lines, payment allocations, customer alerts, imports.

Refund rows, refund lines and allocations are a ledger: written once by the services;
only their settlement status moves afterwards. A correction is a new row.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from sales.models import CURRENCY_PATTERN, CancelReason, Payment, Sale, SaleLine


def _choices_check(name: str, field: str, values: list[str]):
    return models.CheckConstraint(condition=Q(**{f"{field}__in": values}), name=name)


class RefundType(models.TextChoices):
    REFUND = "refund", "Refund"
    BALANCE_REFUND = "balance_refund", "Store balance refund"
    CANCELLATION = "cancellation", "Cancellation"


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class RefundReason(models.TextChoices):
    REQUESTED_BY_CUSTOMER = "requested_by_customer", "Requested by customer"
    DAMAGED = "damaged", "Damaged"
    NOT_RECEIVED = "not_received", "Not received"
    DUPLICATE = "duplicate", "Duplicate"
    FRAUDULENT = "fraudulent", "Fraudulent"
    OTHER = "other", "Other"


class Source(models.TextChoices):
    ADMIN = "admin", "Admin"
    API = "api", "API"
    COMMAND = "command", "Command"
    IMPORT = "import", "Import"


# A cancellation's refund carries the cancel reason; any other refund a refund reason.
ALL_REASONS = sorted(set(RefundReason.values) | set(CancelReason.values))
# A reason's words, wherever staff read it: the TextChoices labels, nowhere else.
REASON_LABELS = {**dict(CancelReason.choices), **dict(RefundReason.choices)}


def reason_label(code: str) -> str:
    """A refund's (or a cancellation's) reason as staff read it: "Damaged", not `damaged`."""
    return REASON_LABELS.get(code, code)


class Refund(models.Model):
    # Each status's badge colour (backoffice/badges.py); its words are RefundStatus's labels.
    STATUS_TONES = {
        RefundStatus.SUCCEEDED: "green", RefundStatus.PENDING: "amber",
        RefundStatus.FAILED: "red",
    }

    sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="refunds")
    type = models.CharField(max_length=16, choices=RefundType.choices, default=RefundType.REFUND)
    status = models.CharField(
        max_length=16, choices=RefundStatus.choices, default=RefundStatus.SUCCEEDED
    )
    currency = models.CharField(max_length=3)

    # Options as asked (after defaults were applied).
    restock = models.BooleanField(default=True)
    refund_processing_fee = models.BooleanField(default=False)
    refund_reseller_fee = models.BooleanField(default=False)
    refund_shipping = models.BooleanField(default=False)
    alert_customer = models.BooleanField(default=False)
    online = models.BooleanField(default=True)

    # Amounts given back, minor units. total = lines + tax + fees for refunds; for a
    # cancellation of a partly paid sale, total is what was paid (the rest was never
    # collected).
    lines_amount = models.BigIntegerField(default=0)
    tax_amount = models.BigIntegerField(default=0)
    processing_fee = models.BigIntegerField(default=0)
    reseller_fee = models.BigIntegerField(default=0)
    shipping_fee = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    units = models.IntegerField(default=0)

    reason = models.CharField(max_length=32, default=RefundReason.REQUESTED_BY_CUSTOMER)
    note = models.TextField(blank=True, help_text="Staff note; the customer never sees it.")
    batch_id = models.CharField(max_length=128, blank=True, db_index=True)
    returned_at = models.DateTimeField(null=True, blank=True)

    # A refund asked for with an idempotency key is pointed at by that key's row
    # (backoffice.IdempotencyKey.refund, the one store): purging the key after its week
    # ends replay protection, never this record.
    external_id = models.CharField(max_length=128, null=True, blank=True)
    import_source = models.CharField(max_length=64, blank=True)
    # An imported refund that was withdrawn (sent again with no line items).
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN)
    # Who did it stays on the books: a user who acted can't be deleted (deactivate them).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Through which API key, when it came through the API (keys are revoked, never deleted).
    api_key = models.ForeignKey(
        "backoffice.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["sale", "-created_at"], name="refund_sale_created"),
            models.Index(fields=["status", "-created_at"], name="refund_status_created"),
        ]
        constraints = [
            _choices_check("refund_type_valid", "type", RefundType.values),
            _choices_check("refund_status_valid", "status", RefundStatus.values),
            _choices_check("refund_source_valid", "source", Source.values),
            _choices_check("refund_reason_valid", "reason", ALL_REASONS),
            models.CheckConstraint(
                condition=(Q(type="cancellation") & Q(reason__in=CancelReason.values))
                | (~Q(type="cancellation") & Q(reason__in=RefundReason.values)),
                name="refund_reason_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_PATTERN), name="refund_currency_iso_code"
            ),
            # A store-balance refund moves no money through a gateway.
            models.CheckConstraint(
                condition=~Q(type="balance_refund") | Q(online=False),
                name="refund_balance_refund_offline",
            ),
            models.CheckConstraint(
                condition=Q(
                    lines_amount__gte=0, tax_amount__gte=0, processing_fee__gte=0,
                    reseller_fee__gte=0, shipping_fee__gte=0, total__gte=0, units__gte=0,
                ),
                name="refund_amounts_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(type="cancellation")
                | Q(
                    total=F("lines_amount") + F("tax_amount") + F("processing_fee")
                    + F("reseller_fee") + F("shipping_fee")
                ),
                name="refund_total_adds_up",
            ),
            # external_id first: lookups by external id alone use this index too.
            models.UniqueConstraint(
                fields=["external_id", "import_source"],
                condition=Q(external_id__isnull=False),
                name="refund_external_id_unique_per_source",
            ),
        ]

    def __str__(self) -> str:
        # "Refund #13 of S-000008". Reads the sale: lists and inlines select_related it.
        return f"Refund #{self.pk} of {self.sale}"

    def get_reason_display(self) -> str:
        """The reason's label (a cancellation's refund carries a CancelReason)."""
        return reason_label(self.reason)


class RefundLine(models.Model):
    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    sale_line = models.ForeignKey(SaleLine, on_delete=models.PROTECT, related_name="refund_lines")
    quantity = models.IntegerField()
    amount = models.BigIntegerField()
    tax_amount = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="refundline_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(amount__gte=0, tax_amount__gte=0), name="refundline_amounts_gte_0"
            ),
            models.UniqueConstraint(fields=["refund", "sale_line"], name="refundline_unique_line"),
        ]

    def __str__(self) -> str:
        # "1 × Notebook A5". Reads the sale line: lists and inlines select_related it.
        return f"{self.quantity} × {self.sale_line.description}"


class AllocationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class RefundPayment(models.Model):
    """How a refund's money goes back: one allocation per payment it touches."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="allocations")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    amount = models.BigIntegerField()
    online = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=AllocationStatus.choices, default=AllocationStatus.SUCCEEDED
    )
    gateway_reference = models.CharField(max_length=128, blank=True)
    # The gateway was asked (set before the call, so a retry never asks twice blindly).
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    # When a retry is due; beat re-queues only what is past it, so it never starts a
    # second chain of retries beside one still waiting out its backoff.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Sent to the gateway as the idempotency key: unique everywhere (a restored database
    # or a staging copy on the same gateway account can never repeat one).
    gateway_key = models.UUIDField(default=uuid.uuid4, null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            _choices_check("refundpayment_status_valid", "status", AllocationStatus.values),
            models.CheckConstraint(condition=Q(amount__gte=0), name="refundpayment_amount_gte_0"),
            models.UniqueConstraint(
                fields=["refund", "payment"], name="refundpayment_unique_payment"
            ),
        ]

    def __str__(self) -> str:
        # "£9.84 to Card (succeeded)". Reads the refund and the payment: lists and
        # inlines select_related them.
        from backoffice.money import format_money

        return (f"{format_money(self.amount, self.refund.currency)} to "
                f"{self.payment.get_method_display()} ({self.get_status_display().lower()})")

    @property
    def idempotency_key(self) -> str:
        if self.gateway_key:
            return f"refund-{self.gateway_key}"
        return f"refund-{self.refund_id}-payment-{self.payment_id}"  # rows before 0005


class AlertEvent(models.TextChoices):
    SALE_CANCELLED = "sale_cancelled", "Sale cancelled"
    SALE_REFUNDED = "sale_refunded", "Sale refunded"
    REFUND_CREATED = "refund_created", "Partial refund"


class AlertChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class AlertStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    # The refund it announced failed at the gateway: never to be sent.
    CANCELLED = "cancelled", "Cancelled"
    # Claimed by a sender (committed before the message goes out); the outcome follows.
    SENDING = "sending", "Sending"
    # The send started but its outcome was never known (the sender died, or the provider
    # never answered): not repeated blindly; staff check and resend or mark it sent.
    UNKNOWN = "unknown", "Outcome unknown"


class CustomerAlert(models.Model):
    """Outbox row, written in the same transaction as the refund or cancel."""

    # Each status's badge colour (backoffice/badges.py); its words are AlertStatus's labels.
    STATUS_TONES = {
        AlertStatus.PENDING: "amber", AlertStatus.SENDING: "amber", AlertStatus.SENT: "green",
        AlertStatus.FAILED: "red", AlertStatus.UNKNOWN: "red", AlertStatus.CANCELLED: "grey",
    }

    sale = models.ForeignKey(Sale, on_delete=models.CASCADE, related_name="alerts")
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    event = models.CharField(max_length=32, choices=AlertEvent.choices)
    channel = models.CharField(max_length=8, choices=AlertChannel.choices)
    recipient = models.CharField(max_length=254)
    status = models.CharField(
        max_length=16, choices=AlertStatus.choices, default=AlertStatus.PENDING
    )
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    # When a retry is due (see RefundPayment.next_attempt_at).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"], name="alert_status_created")]
        constraints = [
            _choices_check("customeralert_event_valid", "event", AlertEvent.values),
            _choices_check("customeralert_channel_valid", "channel", AlertChannel.values),
            _choices_check("customeralert_status_valid", "status", AlertStatus.values),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="customeralert_sent_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.recipient} ({self.status})"


class ImportOutcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"


class RefundImport(models.Model):
    """One bulk upload of refund records (API, admin page or command)."""

    source = models.CharField(max_length=64, default="api")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    count = models.IntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=ImportOutcome.choices)
    errors = models.JSONField(default=list, blank=True)
    # Who did it stays on the books: a user who acted can't be deleted (deactivate them).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Through which API key, when it came through the API (keys are revoked, never deleted).
    api_key = models.ForeignKey(
        "backoffice.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            _choices_check("refundimport_outcome_valid", "outcome", ImportOutcome.values),
        ]

    def __str__(self) -> str:
        return f"Import of {self.count} from {self.source} ({self.outcome})"
