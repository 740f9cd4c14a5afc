"""What the sales services take: plain dataclasses the doors (API serializers, commands,
the demo seed) fill, and the checks on them that need no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from backoffice.errors import ValidationFailedError

from .models import PaymentMethod, SaleChannel, SaleKind


@dataclass
class LineInput:
    quantity: int
    unit_price: int | None = None
    description: str = ""
    sku: str = ""
    product_id: int | None = None
    discount: int = 0
    tax_rate: Decimal = Decimal("0")


@dataclass
class PaymentInput:
    method: str
    amount: int
    gateway: str = ""
    gateway_reference: str = ""


@dataclass
class CustomerInput:
    name: str = ""
    email: str = ""
    phone: str = ""


@dataclass
class SaleInput:
    lines: list[LineInput]
    kind: str = SaleKind.RECEIPT
    channel: str = SaleChannel.MANUAL
    currency: str = "GBP"
    external_id: str | None = None
    customer_id: int | None = None
    customer: CustomerInput | None = None
    order_discount: int = 0
    processing_fee: int = 0
    reseller_fee: int = 0
    shipping_fee: int = 0
    payments: list[PaymentInput] = field(default_factory=list)


@dataclass
class SaleUpdate:
    """What PATCH may change; None leaves a field as it is. `lines` replaces all lines."""

    kind: str | None = None
    external_id: str | None = None
    customer_id: int | None = None
    customer: CustomerInput | None = None
    lines: list[LineInput] | None = None
    order_discount: int | None = None
    processing_fee: int | None = None
    reseller_fee: int | None = None
    shipping_fee: int | None = None


def raise_validation_errors(errors: dict[str, list[str]]) -> None:
    """A ValidationFailedError naming every field path in errors (none: nothing)."""
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationFailedError(first, extra=errors)


def payment_input_validate(pay: PaymentInput, *, path: str) -> None:
    errors: dict[str, list[str]] = {}
    if pay.method not in PaymentMethod.values:
        errors[f"{path}.method"] = [f"Method must be one of {', '.join(PaymentMethod.values)}."]
    if not isinstance(pay.amount, int) or pay.amount <= 0:
        errors[f"{path}.amount"] = ["Amount must be a whole number of minor units above zero."]
    if pay.gateway and pay.gateway not in settings.PAYMENT_GATEWAYS:
        errors[f"{path}.gateway"] = [
            f"Unknown gateway; use one of {', '.join(settings.PAYMENT_GATEWAYS)} or leave blank."
        ]
    raise_validation_errors(errors)
