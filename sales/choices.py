"""The sales app's choices: a sale's kind, channel and status, why and through which door
it was cancelled. Imported through sales.models, where the models use them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def choices_check(name: str, field: str, choices: type[models.TextChoices]):
    """The CHECK constraint that keeps a column to its choices' values."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class SaleKind(models.TextChoices):
    QUOTE = "quote", "Quote"
    INVOICE = "invoice", "Invoice"
    RECEIPT = "receipt", "Receipt"


class SaleChannel(models.TextChoices):
    POS = "pos", "Point of sale"
    STOREFRONT = "storefront", "Storefront"
    API = "api", "API"
    MANUAL = "manual", "Manual"


class SaleStatus(models.TextChoices):
    QUOTE = "quote", "Quote"
    UNPAID = "unpaid", "Unpaid"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    CANCELLED = "cancelled", "Cancelled"


# The doors a sale is cancelled through (refunds.models.Source's values; a test keeps
# the two equal: sales does not import refunds).
CANCEL_SOURCES = ("admin", "api", "command", "import")


class CancelReason(models.TextChoices):
    CUSTOMER = "customer", "Customer changed their mind"
    DECLINED = "declined", "Payment declined"
    FRAUD = "fraud", "Fraudulent"
    INVENTORY = "inventory", "Out of stock"
    STAFF = "staff", "Staff error"
    OTHER = "other", "Other"


class StockMoveKind(models.TextChoices):
    OPENING = "opening", "Opening"
    ADJUSTMENT = "adjustment", "Adjustment"
    SALE = "sale", "Sale"
    SALE_EDIT = "sale_edit", "Sale edit"
    REFUND = "refund", "Refund"
    CANCEL = "cancel", "Cancel"


__all__ = ["CANCEL_SOURCES", "CancelReason", "SaleChannel", "SaleKind", "SaleStatus",
           "StockMoveKind", "choices_check"]
