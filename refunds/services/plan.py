"""What a refund would give back: the one computation, written nowhere.

`plan_refund` is run by the preview on an unlocked snapshot and by every write (refund,
bulk import) on the locked rows, so the two can never disagree. Amounts always come from
the sale. What a plan moves is its effect (ledger.py); writing it is refund.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from backoffice.errors import (
    NoCustomerForBalanceError,
    NothingToRefundError,
    RefundExceedsPaidError,
    RefundQuantityExceededError,
    SaleCancelledError,
    SaleNotRefundableError,
    SplitExceedsPaymentError,
    SplitMismatchError,
    StaleRefundStateError,
    UnknownLineError,
    UnknownPaymentError,
    ValidationFailedError,
)
from backoffice.money import format_money, largest_remainder, part
from sales.models import Payment, Sale, SaleKind, SaleLine, SaleStatus
from sales.selectors import LockedSale, sale_snapshot

from ..models import RefundReason, RefundType

ItemsArg = Mapping[int, int] | Sequence[tuple[int, int]] | None
OFFLINE_GATEWAYS = {"", "manual"}


@dataclass(frozen=True)
class RefundOptions:
    """What the caller may choose (DESIGN §3.4). None = the documented default."""

    type: str = RefundType.REFUND
    restock: bool = True
    refund_processing_fee: bool | None = None
    refund_reseller_fee: bool | None = None
    refund_shipping: bool | None = None
    alert_customer: bool = False
    online: bool = True
    reason: str = RefundReason.REQUESTED_BY_CUSTOMER
    note: str = ""
    batch_id: str = ""
    returned_at: datetime | None = None


@dataclass
class PlannedLine:
    line: SaleLine
    quantity: int
    amount: int
    tax_amount: int

    @property
    def total(self) -> int:
        return self.amount + self.tax_amount


@dataclass
class PlannedAllocation:
    payment: Payment
    amount: int
    online: bool


@dataclass
class RefundPlan:
    sale: Sale
    options: RefundOptions
    lines: list[PlannedLine]
    allocations: list[PlannedAllocation]
    processing_fee: int = 0
    reseller_fee: int = 0
    shipping_fee: int = 0
    empties_sale: bool = False
    # A cancellation gives back what was paid, which may be less than what was charged.
    total_override: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def lines_amount(self) -> int:
        return sum(pl.amount for pl in self.lines)

    @property
    def tax_amount(self) -> int:
        return sum(pl.tax_amount for pl in self.lines)

    @property
    def fees(self) -> int:
        return self.processing_fee + self.reseller_fee + self.shipping_fee

    @property
    def units(self) -> int:
        return sum(pl.quantity for pl in self.lines)

    @property
    def total(self) -> int:
        if self.total_override is not None:
            return self.total_override
        return self.lines_amount + self.tax_amount + self.fees

    @property
    def online(self) -> bool:
        return any(a.online for a in self.allocations)


def normalise_items(items: ItemsArg) -> list[tuple[int, int]]:
    if not items:
        return []
    pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    return [(int(line_id), qty) for line_id, qty in pairs]


def _plan_lines(locked: LockedSale, items: list[tuple[int, int]]) -> list[PlannedLine]:
    by_id = {line.pk: line for line in locked.lines}
    if not items:  # No items named: everything that remains.
        return [
            PlannedLine(line, line.remaining_quantity,
                        part(line.net_amount, line.refunded_quantity, line.remaining_quantity,
                             line.quantity),
                        part(line.tax_amount, line.refunded_quantity, line.remaining_quantity,
                             line.quantity))
            for line in locked.lines
            if line.remaining_quantity > 0
        ]
    errors: dict[str, list[str]] = {}
    sentences: list[str] = []  # the same refusals in plain words, for people
    seen: set[int] = set()
    planned: list[PlannedLine] = []
    unknown = exceeded = False
    for i, (line_id, qty) in enumerate(items):
        line = by_id.get(line_id)
        if line is None:
            errors[f"items[{i}].item_id"] = [f"Sale {locked.sale.number} has no line {line_id}."]
            unknown = True
            continue
        if line_id in seen:
            errors[f"items[{i}].item_id"] = [f"Line {line_id} is named twice."]
            continue
        seen.add(line_id)
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            errors[f"items[{i}].quantity"] = ["Quantity must be a whole number above zero."]
            continue
        if qty > line.remaining_quantity:
            left = line.remaining_quantity
            errors[f"items[{i}].quantity"] = [
                f"only {left} left to refund" if left else "nothing left to refund"
            ]
            name = line.description or line.sku or f"line {line.pk}"
            sentences.append(
                f"{name}: {qty} asked, only {left} left to refund" if left
                else f"{name}: {qty} asked, nothing left to refund"
            )
            exceeded = True
            continue
        planned.append(PlannedLine(
            line, qty,
            part(line.net_amount, line.refunded_quantity, qty, line.quantity),
            part(line.tax_amount, line.refunded_quantity, qty, line.quantity),
        ))
    if errors:
        first = next(iter(errors.values()))
        if exceeded:
            raise RefundQuantityExceededError(
                f"That is more than is left to refund. {'; '.join(sentences)}.", extra=errors
            )
        if unknown:
            raise UnknownLineError(first[0], extra=errors)
        raise ValidationFailedError(first[0], extra=errors)
    return planned


def _allocate(
    locked: LockedSale, total: int, splits: Mapping[int, int] | None, options: RefundOptions
) -> list[PlannedAllocation]:
    payments = locked.payments
    left = {p.pk: p.remaining_amount for p in payments}
    if splits:
        errors: dict[str, list[str]] = {}
        by_id = {p.pk: p for p in payments}
        for pid, amount in splits.items():
            key = f"splits[{pid}]"
            if pid not in by_id:
                raise UnknownPaymentError(
                    f"Sale {locked.sale.number} has no payment {pid}.",
                    extra={key: ["Unknown payment."]},
                )
            if not isinstance(amount, int) or amount < 0:
                errors[key] = ["Amount must be a whole number of minor units, zero or more."]
            elif amount > left[pid]:
                raise SplitExceedsPaymentError(
                    f"Payment {pid} has only {left[pid]} left to refund; {amount} asked.",
                    extra={key: [f"At most {left[pid]}."]},
                )
        if errors:
            raise ValidationFailedError(next(iter(errors.values()))[0], extra=errors)
        asked = sum(splits.values())
        if asked != total:
            raise SplitMismatchError(
                f"The splits add up to {asked} but the refund is {total}.",
                extra={"splits": [f"Must add up to {total}."]},
            )
        amounts = [splits.get(p.pk, 0) for p in payments]
    else:
        if total > sum(left.values()):
            raise RefundExceedsPaidError(
                f"The refund ({total}) is more than is left of what was paid "
                f"({sum(left.values())}) on sale {locked.sale.number}."
            )
        # In proportion to each payment's original amount, capped at what is left on it.
        amounts = largest_remainder(
            total, [p.amount for p in payments], [left[p.pk] for p in payments]
        )
    balance = options.type == RefundType.BALANCE_REFUND
    return [
        PlannedAllocation(
            payment=p,
            amount=amount,
            online=(not balance and options.online and amount > 0
                    and p.gateway not in OFFLINE_GATEWAYS),
        )
        for p, amount in zip(payments, amounts, strict=True)
        if amount > 0
    ]


def _check_refundable(sale: Sale, expected_refunded_amount: int | None) -> None:
    if sale.status == SaleStatus.CANCELLED:
        raise SaleCancelledError(f"Sale {sale.number} is cancelled; there is nothing to refund.")
    if sale.kind == SaleKind.QUOTE:
        raise SaleNotRefundableError(f"Sale {sale.number} is a quote; nothing was paid.")
    if sale.amount_paid <= 0:
        raise SaleNotRefundableError(
            f"Nothing was paid on sale {sale.number}; cancel it instead."
        )
    if expected_refunded_amount is not None and expected_refunded_amount != sale.amount_refunded:
        raise StaleRefundStateError(
            f"Sale {sale.number} has {format_money(sale.amount_refunded, sale.currency)} "
            f"refunded, not {format_money(expected_refunded_amount, sale.currency)} as "
            "expected: it changed since you looked. Reload it and check before refunding "
            "again.",
            extra={"expected_refunded_amount": [f"Now {sale.amount_refunded}."]},
        )


def plan_refund(
    locked: LockedSale,
    *,
    items: ItemsArg,
    options: RefundOptions,
    splits: Mapping[int, int] | None,
    expected_refunded_amount: int | None,
) -> RefundPlan:
    sale = locked.sale
    if options.type not in (RefundType.REFUND, RefundType.BALANCE_REFUND):
        raise ValidationFailedError(
            "Type must be refund or balance_refund (cancel a sale to cancel it).",
            extra={"type": ["Must be refund or balance_refund."]},
        )
    if options.reason not in RefundReason.values:
        raise ValidationFailedError(
            f"Reason must be one of {', '.join(RefundReason.values)}.",
            extra={"reason": ["Unknown reason."]},
        )
    _check_refundable(sale, expected_refunded_amount)
    if options.type == RefundType.BALANCE_REFUND and sale.customer_id is None:
        raise NoCustomerForBalanceError(
            f"Sale {sale.number} has no customer whose store balance could be credited."
        )

    planned = _plan_lines(locked, normalise_items(items))
    refunded_after = sale.refunded_units + sum(pl.quantity for pl in planned)
    empties = refunded_after >= sale.units

    def fee(flag: bool | None, amount: int, refunded: int) -> tuple[bool, int]:
        wanted = empties if flag is None else flag
        return wanted, (amount if wanted and refunded == 0 else 0)

    want_processing, processing = fee(
        options.refund_processing_fee, sale.processing_fee, sale.refunded_processing_fee
    )
    want_reseller, reseller = fee(
        options.refund_reseller_fee, sale.reseller_fee, sale.refunded_reseller_fee
    )
    want_shipping, shipping = fee(
        options.refund_shipping, sale.shipping_fee, sale.refunded_shipping_fee
    )
    resolved = replace(
        options,
        refund_processing_fee=want_processing,
        refund_reseller_fee=want_reseller,
        refund_shipping=want_shipping,
        online=options.online and options.type == RefundType.REFUND,
    )
    plan = RefundPlan(
        sale=sale, options=resolved, lines=planned, allocations=[],
        processing_fee=processing, reseller_fee=reseller, shipping_fee=shipping,
        empties_sale=empties,
    )
    if plan.units == 0 and plan.total == 0:
        raise NothingToRefundError(f"Nothing is left to refund on sale {sale.number}.")
    plan.allocations = _allocate(locked, plan.total, splits, resolved)
    if resolved.online and not plan.online:
        plan.warnings.append("No payment can be refunded online: the refund is made offline.")
    return plan


def refund_preview(
    *,
    sale_id: int,
    items: ItemsArg = None,
    options: RefundOptions = RefundOptions(),  # noqa: B008 - frozen dataclass
    splits: Mapping[int, int] | None = None,
    expected_refunded_amount: int | None = None,
) -> RefundPlan:
    """What refund_create would do, written nowhere."""
    return plan_refund(
        sale_snapshot(sale_id), items=items, options=options, splits=splits,
        expected_refunded_amount=expected_refunded_amount,
    )
