"""Record a payment against a sale ("update balance"). One transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from backoffice.errors import (
    PaymentExceedsBalanceError,
    SaleCancelledError,
    SaleHasRefundsError,
    SaleIsQuoteError,
)

from .inputs import PaymentInput, payment_input_validate
from .models import Payment, Sale, SaleKind, SaleStatus
from .selectors import sale_lock


@transaction.atomic
def payment_record(
    *,
    sale_id: int,
    amount: int,
    method: str,
    gateway: str = "",
    gateway_reference: str = "",
    actor: Any = None,
) -> Payment:
    """'Update balance': record a payment; it may not push the amount paid above the total."""
    payment_input_validate(
        PaymentInput(method=method, amount=amount, gateway=gateway), path="payment"
    )
    locked = sale_lock(sale_id)
    sale = locked.sale
    if sale.status == SaleStatus.CANCELLED:
        raise SaleCancelledError(f"Sale {sale.number} is cancelled; it takes no payment.")
    if sale.kind == SaleKind.QUOTE:
        raise SaleIsQuoteError(
            f"Sale {sale.number} is a quote; make it an invoice before recording a payment."
        )
    if sale.amount_refunded:
        raise SaleHasRefundsError(
            f"Sale {sale.number} has refunds; record no new payment against it."
        )
    if sale.amount_paid + amount > sale.total:
        raise PaymentExceedsBalanceError(
            f"Sale {sale.number} has {sale.balance_due} left to pay; {amount} is too much.",
            extra={"amount": [f"At most {sale.balance_due}."]},
        )
    payment = Payment.objects.create(
        sale=sale, method=method, amount=amount, gateway=gateway,
        gateway_reference=gateway_reference,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    sale.amount_paid += amount
    if sale.amount_paid >= sale.total:
        sale.paid_at = timezone.now()
    sale.status = sale.compute_status()
    Sale.objects.filter(pk=sale.pk).update(
        amount_paid=F("amount_paid") + amount, status=sale.status, paid_at=sale.paid_at,
        updated_at=timezone.now(),
    )
    return payment
