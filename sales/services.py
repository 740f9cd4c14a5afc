"""Writes for sales: make a sale, edit it, record a payment (sales/payments.py). One
transaction each; what they take is in sales/inputs.py.

Row locks, in the one order every writer follows (sales/selectors.py takes the first
three): the sale, its lines by pk, its payments by pk, then the products whose stock
moves, by pk (`stock_move`). A writer that touches several products locks them all,
in pk order, before updating any, so two writers never wait on each other in a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from backoffice.errors import (
    DuplicateExternalIdError,
    PaymentExceedsBalanceError,
    SaleCancelledError,
    ValidationFailedError,
)
from backoffice.money import spread, tax_on

from .inputs import (
    CustomerInput,
    LineInput,
    PaymentInput,
    SaleInput,
    SaleUpdate,
    payment_input_validate,
    raise_validation_errors,
)
from .models import (
    CURRENCY_PATTERN,
    SALE_NUMBER,
    Customer,
    Payment,
    Product,
    Sale,
    SaleChannel,
    SaleKind,
    SaleLine,
    SaleStatus,
    external_id_problem,
    sale_number,
)
from .payments import payment_record
from .selectors import sale_lock
from .stock_moves import StockMove, StockMoveKind

# The inputs and payment_record are imported from here by the doors (API, commands).
__all__ = [
    "CustomerInput", "LineInput", "PaymentInput", "SaleInput", "SaleUpdate",
    "customer_get_or_create", "payment_record", "product_save", "sale_create", "sale_update",
    "stock_move",
]

_CURRENCY = re.compile(CURRENCY_PATTERN)

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
    raise_validation_errors(errors)

    after_line_discounts = [ln.quantity * ln.unit_price - ln.discount for ln in lines]
    if data.order_discount < 0 or data.order_discount > sum(after_line_discounts):
        raise_validation_errors({"order_discount": [
            f"Order discount must be between 0 and {sum(after_line_discounts)}."
        ]})
    # The order-level discount is spread over the lines by the same cumulative rule the
    # refunds use, so the line discounts add up exactly to what the order was given.
    for line, extra in zip(lines, spread(data.order_discount, after_line_discounts), strict=True):
        line.discount += extra
        line.net_amount = line.quantity * line.unit_price - line.discount
        line.tax_amount = tax_on(line.net_amount, line.tax_rate)
    return lines


def _move_stock(lines: Iterable[SaleLine], sign: int, *, sale_id: int) -> None:
    """Move product stock by each line's quantity in one UPDATE (sign -1 takes, +1 gives)."""
    per_product: dict[int, int] = {}
    for line in lines:
        if line.product_id:
            per_product[line.product_id] = per_product.get(line.product_id, 0) + line.quantity
    stock_move(per_product, sign, kind=StockMoveKind.SALE, sale_id=sale_id)


def stock_move(per_product: Mapping[int, int], sign: int, *, kind: str,
               sale_id: int | None = None, refund_id: int | None = None) -> None:
    """Add sign × quantity to each product's stock and record each move (a StockMove of
    this kind): one UPDATE and one INSERT whatever the number of products. The caller's
    transaction holds the sale's lock; the products are locked here, last, in pk order
    (see the top of this module): an UPDATE alone would lock them in whatever order the
    scan meets them. (On PostgreSQL the refunds' ledger writes the same rows in its one
    statement: refunds/services/write_pg.py.)"""
    moves = {pk: sign * q for pk, q in per_product.items() if q}
    if not moves:
        return
    ids = sorted(moves)
    list(Product.objects.select_for_update().filter(pk__in=ids).order_by("pk")
         .values_list("pk", flat=True))
    delta = Case(*[When(pk=pk, then=Value(d)) for pk, d in moves.items()])
    Product.objects.filter(pk__in=ids).update(stock=F("stock") + delta)
    StockMove.objects.bulk_create(
        StockMove(product_id=pk, delta=moves[pk], kind=kind, sale_id=sale_id,
                  refund_id=refund_id)
        for pk in ids
    )


@transaction.atomic
def product_save(product: Product) -> Product:
    """Save a product made or edited by staff or the API, its stock as given: the
    difference from the stored stock is recorded as a move (opening for a new product,
    adjustment for an edit; none when the stock is unchanged). The stored row is locked
    first, so a sale moving the stock meanwhile is counted, not overwritten unseen."""
    if product._state.adding:
        product.save(force_insert=True)
        before, kind = 0, StockMoveKind.OPENING
    else:
        before = (Product.objects.select_for_update().filter(pk=product.pk)
                  .values_list("stock", flat=True).get())
        product.save()
        kind = StockMoveKind.ADJUSTMENT
    if product.stock != before:
        StockMove.objects.create(product=product, delta=product.stock - before, kind=kind)
    return product


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
    raise_validation_errors(errors)

    lines = _priced_lines(data)
    subtotal = sum(line.net_amount for line in lines)
    tax_total = sum(line.tax_amount for line in lines)
    fees = data.processing_fee + data.reseller_fee + data.shipping_fee
    total = subtotal + tax_total + fees

    for i, pay in enumerate(data.payments):
        payment_input_validate(pay, path=f"payments[{i}]")
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
            raise_validation_errors({"customer_id": [f"No customer with id {data.customer_id}."]})
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
        _move_stock(lines, -1, sale_id=sale.pk)
    return sale


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
    raise_validation_errors(errors)

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
            raise_validation_errors({"customer_id": [f"No customer with id {data.customer_id}."]})
        sale.customer = customer
    elif data.customer and (data.customer.email or data.customer.phone or data.customer.name):
        sale.customer = customer_get_or_create(data=data.customer)

    old_lines = locked.lines
    if data.lines is not None or data.order_discount is not None:
        line_inputs = data.lines
        if line_inputs is None:
            # Line discounts already include the old order discount: send the lines again.
            raise_validation_errors(
                {"order_discount": ["Send the lines with a new order discount."]})
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
    stock_move(delta, +1, kind=StockMoveKind.SALE_EDIT, sale_id=sale.pk)

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

