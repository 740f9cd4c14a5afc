"""Writes for sales: make a sale, record a payment. One transaction each.

Row locks, in the one order every writer follows (sales/selectors.py takes the first
three): the sale, its lines by pk, its payments by pk, then the products whose stock
moves, by pk (`stock_move`). A writer that touches several products locks them all,
in pk order, before updating any, so two writers never wait on each other in a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from backoffice.errors import (
    DuplicateExternalIdError,
    PaymentExceedsBalanceError,
    SaleCancelledError,
    SaleHasRefundsError,
    SaleIsQuoteError,
    ValidationFailedError,
)
from backoffice.money import spread, tax_on

from .models import (
    CURRENCY_PATTERN,
    SALE_NUMBER,
    Customer,
    Payment,
    PaymentMethod,
    Product,
    Sale,
    SaleChannel,
    SaleKind,
    SaleLine,
    SaleStatus,
    external_id_problem,
    sale_number,
)
from .selectors import sale_lock

_CURRENCY = re.compile(CURRENCY_PATTERN)


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


def _fail(errors: dict[str, list[str]]) -> None:
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationFailedError(first, extra=errors)


def customer_get_or_create(*, data: CustomerInput) -> Customer:
    """The customer with this email (or phone), created when new."""
    lookup = {"email": data.email} if data.email else {"phone": data.phone} if data.phone else None
    if lookup:
        existing = Customer.objects.filter(**lookup).order_by("pk").first()
        if existing:
            return existing
    return Customer.objects.create(
        name=data.name or data.email or data.phone or "Customer",
        email=data.email,
        phone=data.phone,
    )


def _priced_lines(data: SaleInput) -> list[SaleLine]:
    errors: dict[str, list[str]] = {}
    if not data.lines:
        errors["lines"] = ["A sale needs at least one line."]
    product_ids = {line.product_id for line in data.lines if line.product_id}
    skus = {line.sku for line in data.lines if line.sku and not line.product_id}
    products = {p.pk: p for p in Product.objects.filter(pk__in=product_ids)} if product_ids else {}
    by_sku = {p.sku: p for p in Product.objects.filter(sku__in=skus)} if skus else {}

    lines: list[SaleLine] = []
    for i, item in enumerate(data.lines):
        path = f"lines[{i}]"
        product = None
        if item.product_id:
            product = products.get(item.product_id)
            if product is None:
                errors[f"{path}.product_id"] = [f"No product with id {item.product_id}."]
                continue
        elif item.sku:
            product = by_sku.get(item.sku)
        unit_price = item.unit_price if item.unit_price is not None else (
            product.price if product else None
        )
        if unit_price is None:
            errors[f"{path}.unit_price"] = ["Give a unit price or a known product."]
            continue
        if not isinstance(item.quantity, int) or item.quantity <= 0:
            errors[f"{path}.quantity"] = ["Quantity must be a whole number above zero."]
            continue
        if unit_price < 0:
            errors[f"{path}.unit_price"] = ["Unit price cannot be negative."]
            continue
        try:
            rate = Decimal(str(item.tax_rate))
        except InvalidOperation:
            errors[f"{path}.tax_rate"] = ["Tax rate must be a decimal such as 0.20."]
            continue
        if rate < 0 or rate >= 10:
            errors[f"{path}.tax_rate"] = ["Tax rate must be between 0 and 10 (0.20 is 20%)."]
            continue
        gross = item.quantity * unit_price
        if item.discount < 0 or item.discount > gross:
            errors[f"{path}.discount"] = [f"Discount must be between 0 and {gross}."]
            continue
        lines.append(
            SaleLine(
                product=product,
                sku=item.sku or (product.sku if product else ""),
                description=item.description or (product.name if product else item.sku),
                quantity=item.quantity,
                unit_price=unit_price,
                discount=item.discount,
                tax_rate=rate,
            )
        )
    _fail(errors)

    after_line_discounts = [ln.quantity * ln.unit_price - ln.discount for ln in lines]
    if data.order_discount < 0 or data.order_discount > sum(after_line_discounts):
        _fail({"order_discount": [
            f"Order discount must be between 0 and {sum(after_line_discounts)}."
        ]})
    # The order-level discount is spread over the lines by the same cumulative rule the
    # refunds use, so the line discounts add up exactly to what the order was given.
    for line, extra in zip(lines, spread(data.order_discount, after_line_discounts), strict=True):
        line.discount += extra
        line.net_amount = line.quantity * line.unit_price - line.discount
        line.tax_amount = tax_on(line.net_amount, line.tax_rate)
    return lines


def _move_stock(lines: Iterable[SaleLine], sign: int) -> None:
    """Move product stock by each line's quantity in one UPDATE (sign -1 takes, +1 gives)."""
    per_product: dict[int, int] = {}
    for line in lines:
        if line.product_id:
            per_product[line.product_id] = per_product.get(line.product_id, 0) + line.quantity
    stock_move(per_product, sign)


def stock_move(per_product: Mapping[int, int], sign: int) -> None:
    """Add sign × quantity to each product's stock. The caller's transaction holds the
    sale's lock; the products are locked here, last, in pk order (see the top of this
    module): an UPDATE alone would lock them in whatever order the scan meets them."""
    if not per_product:
        return
    ids = sorted(per_product)
    list(Product.objects.select_for_update().filter(pk__in=ids).order_by("pk")
         .values_list("pk", flat=True))
    delta = Case(*[When(pk=pk, then=Value(sign * q)) for pk, q in per_product.items()])
    Product.objects.filter(pk__in=ids).update(stock=F("stock") + delta)


@transaction.atomic
def sale_create(*, data: SaleInput, actor: Any = None) -> Sale:
    """Make a sale with its lines (and payments already taken). Takes stock unless a quote."""
    errors: dict[str, list[str]] = {}
    currency = (data.currency or "").upper()
    if not _CURRENCY.fullmatch(currency):
        errors["currency"] = ["Currency must be an ISO 4217 code such as GBP."]
    if data.kind not in SaleKind.values:
        errors["kind"] = [f"Kind must be one of {', '.join(SaleKind.values)}."]
    if data.channel not in SaleChannel.values:
        errors["channel"] = [f"Channel must be one of {', '.join(SaleChannel.values)}."]
    if problem := external_id_problem(data.external_id):
        errors["external_id"] = [problem]
    for fee in ("processing_fee", "reseller_fee", "shipping_fee"):
        if getattr(data, fee) < 0:
            errors[fee] = ["Fees cannot be negative."]
    _fail(errors)

    lines = _priced_lines(data)
    subtotal = sum(line.net_amount for line in lines)
    tax_total = sum(line.tax_amount for line in lines)
    fees = data.processing_fee + data.reseller_fee + data.shipping_fee
    total = subtotal + tax_total + fees

    for i, pay in enumerate(data.payments):
        _validate_payment(pay, path=f"payments[{i}]")
    paid = sum(p.amount for p in data.payments)
    if paid > total:
        raise PaymentExceedsBalanceError(
            f"The payments ({paid}) are more than the sale's total ({total}).",
            extra={"payments": [f"At most {total} can be paid."]},
        )
    if data.kind == SaleKind.QUOTE and paid:
        raise ValidationFailedError(
            "A quote takes no payment; make it an invoice first.",
            extra={"payments": ["A quote takes no payment."]},
        )

    customer = None
    if data.customer_id:
        customer = Customer.objects.filter(pk=data.customer_id).first()
        if customer is None:
            _fail({"customer_id": [f"No customer with id {data.customer_id}."]})
    elif data.customer and (data.customer.email or data.customer.phone or data.customer.name):
        customer = customer_get_or_create(data=data.customer)

    sale = Sale(
        kind=data.kind,
        channel=data.channel,
        currency=currency,
        external_id=data.external_id or None,
        customer=customer,
        order_discount=data.order_discount,
        processing_fee=data.processing_fee,
        reseller_fee=data.reseller_fee,
        shipping_fee=data.shipping_fee,
        subtotal=subtotal,
        tax_total=tax_total,
        total=total,
        units=sum(line.quantity for line in lines),
        amount_paid=paid,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    sale.paid_at = timezone.now() if paid and paid >= total else None
    sale.status = sale.compute_status()
    try:
        with transaction.atomic():
            sale.save(force_insert=True)
    except IntegrityError as exc:
        if data.external_id and Sale.objects.filter(external_id=data.external_id).exists():
            raise DuplicateExternalIdError(
                f"A sale with external id {data.external_id!r} already exists.",
                extra={"external_id": ["Already used by another sale."]},
            ) from exc
        raise
    Sale.objects.filter(pk=sale.pk).update(number=SALE_NUMBER)
    sale.number = sale_number(sale.pk)
    for line in lines:
        line.sale = sale
    SaleLine.objects.bulk_create(lines)
    if data.payments:
        Payment.objects.bulk_create(
            Payment(
                sale=sale, method=p.method, amount=p.amount, gateway=p.gateway,
                gateway_reference=p.gateway_reference,
                created_by=actor if getattr(actor, "pk", None) else None,
            )
            for p in data.payments
        )
    if data.kind != SaleKind.QUOTE:
        _move_stock(lines, -1)
    return sale


def _validate_payment(pay: PaymentInput, *, path: str) -> None:
    from django.conf import settings

    errors: dict[str, list[str]] = {}
    if pay.method not in PaymentMethod.values:
        errors[f"{path}.method"] = [f"Method must be one of {', '.join(PaymentMethod.values)}."]
    if not isinstance(pay.amount, int) or pay.amount <= 0:
        errors[f"{path}.amount"] = ["Amount must be a whole number of minor units above zero."]
    if pay.gateway and pay.gateway not in settings.PAYMENT_GATEWAYS:
        errors[f"{path}.gateway"] = [
            f"Unknown gateway; use one of {', '.join(settings.PAYMENT_GATEWAYS)} or leave blank."
        ]
    _fail(errors)


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
    _validate_payment(
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


@transaction.atomic
def sale_update(*, sale_id: int, data: SaleUpdate, actor: Any = None) -> Sale:
    """Edit a sale while nothing is paid or refunded (code `sale_not_editable`).

    Lines are replaced as a whole and priced like a new sale; stock follows: a quote
    holds none, an invoice or receipt holds its lines' units (a quote made an invoice
    takes them, new lines take theirs and give back the old ones').
    """
    from backoffice.errors import SaleNotEditableError

    locked = sale_lock(sale_id)
    sale = locked.sale
    if sale.status == SaleStatus.CANCELLED:
        raise SaleCancelledError(f"Sale {sale.number} is cancelled; it cannot be edited.")
    if sale.amount_paid or sale.amount_refunded or sale.refunded_units:
        raise SaleNotEditableError(
            f"Sale {sale.number} has payments or refunds; it can no longer be edited."
        )
    errors: dict[str, list[str]] = {}
    if data.kind is not None and data.kind not in SaleKind.values:
        errors["kind"] = [f"Kind must be one of {', '.join(SaleKind.values)}."]
    if problem := external_id_problem(data.external_id):
        errors["external_id"] = [problem]
    for fee in ("processing_fee", "reseller_fee", "shipping_fee"):
        value = getattr(data, fee)
        if value is not None and value < 0:
            errors[fee] = ["Fees cannot be negative."]
    _fail(errors)

    old_kind = sale.kind
    new_kind = data.kind or old_kind
    for fee in ("processing_fee", "reseller_fee", "shipping_fee"):
        if getattr(data, fee) is not None:
            setattr(sale, fee, getattr(data, fee))
    if data.external_id is not None:
        sale.external_id = data.external_id or None
    if data.customer_id is not None:
        customer = Customer.objects.filter(pk=data.customer_id).first()
        if customer is None:
            _fail({"customer_id": [f"No customer with id {data.customer_id}."]})
        sale.customer = customer
    elif data.customer and (data.customer.email or data.customer.phone or data.customer.name):
        sale.customer = customer_get_or_create(data=data.customer)

    old_lines = locked.lines
    if data.lines is not None or data.order_discount is not None:
        line_inputs = data.lines
        if line_inputs is None:
            # Line discounts already include the old order discount: send the lines again.
            _fail({"order_discount": ["Send the lines with a new order discount."]})
        order_discount = (
            data.order_discount if data.order_discount is not None else sale.order_discount
        )
        assert line_inputs is not None
        new_lines = _priced_lines(SaleInput(lines=line_inputs, order_discount=order_discount))
        sale.order_discount = order_discount
    else:
        new_lines = None

    # Stock: give back what the sale held, take what it holds now.
    delta: dict[int, int] = {}
    if old_kind != SaleKind.QUOTE:
        for ln in old_lines:
            if ln.product_id:
                delta[ln.product_id] = delta.get(ln.product_id, 0) + ln.quantity
    held = new_lines if new_lines is not None else old_lines
    if new_kind != SaleKind.QUOTE:
        for ln in held:
            if ln.product_id:
                delta[ln.product_id] = delta.get(ln.product_id, 0) - ln.quantity
    stock_move({pk: q for pk, q in delta.items() if q}, +1)

    if new_lines is not None:
        SaleLine.objects.filter(sale_id=sale.pk).delete()
        for line in new_lines:
            line.sale = sale
        SaleLine.objects.bulk_create(new_lines)
        sale.subtotal = sum(ln.net_amount for ln in new_lines)
        sale.tax_total = sum(ln.tax_amount for ln in new_lines)
        sale.units = sum(ln.quantity for ln in new_lines)
    sale.kind = new_kind
    sale.total = (
        sale.subtotal + sale.tax_total + sale.processing_fee + sale.reseller_fee
        + sale.shipping_fee
    )
    sale.status = sale.compute_status()
    try:
        with transaction.atomic():
            sale.save()
    except IntegrityError as exc:
        if sale.external_id and Sale.objects.filter(external_id=sale.external_id).exclude(
            pk=sale.pk
        ).exists():
            raise DuplicateExternalIdError(
                f"A sale with external id {sale.external_id!r} already exists.",
                extra={"external_id": ["Already used by another sale."]},
            ) from exc
        raise
    return sale

