"""What the money-moving commands share: naming a sale, printing a plan, the actor."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from backoffice.errors import DomainError
from backoffice.money import format_money
from refunds.models import Refund
from refunds.services import RefundPlan
from sales.selectors import sale_resolve_id


def resolve_sale(ident: str) -> int:
    try:
        return sale_resolve_id(ident)
    except DomainError as exc:
        raise CommandError(f"{exc.code}: {exc.message}") from exc


def resolve_actor(username: str | None):
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"unknown_user: no user named {username!r}.")
    return user


def plan_lines(plan: RefundPlan) -> list[str]:
    """The plan as plain lines a script can read: `key: value`."""
    cur = plan.sale.currency
    out = [f"sale: {plan.sale.number} (id {plan.sale.pk}, {plan.sale.status})"]
    for pl in plan.lines:
        out.append(
            f"line: {pl.line.pk} {pl.line.description!r} quantity {pl.quantity} "
            f"amount {pl.amount} tax {pl.tax_amount}"
        )
    out.append(
        f"fees: processing {plan.processing_fee} reseller {plan.reseller_fee} "
        f"shipping {plan.shipping_fee}"
    )
    for a in plan.allocations:
        way = "online" if a.online else "offline"
        out.append(f"payment: {a.payment.pk} {a.payment.method} {a.amount} {way}")
    out.append(f"total: {plan.total} ({format_money(plan.total, cur)})")
    out.extend(f"warning: {w}" for w in plan.warnings)
    return out


def refund_lines(refund: Refund) -> list[str]:
    """A refund as written, in the same `key: value` lines as plan_lines."""
    sale = refund.sale
    out = [f"sale: {sale.number} (id {sale.pk}, {sale.status})"]
    for rl in refund.lines.all():
        out.append(
            f"line: {rl.sale_line_id} {rl.sale_line.description!r} quantity {rl.quantity} "
            f"amount {rl.amount} tax {rl.tax_amount}"
        )
    out.append(
        f"fees: processing {refund.processing_fee} reseller {refund.reseller_fee} "
        f"shipping {refund.shipping_fee}"
    )
    for a in refund.allocations.all():
        way = "online" if a.online else "offline"
        out.append(f"payment: {a.payment_id} {a.payment.method} {a.amount} {way}")
    out.append(f"total: {refund.total} ({format_money(refund.total, refund.currency)})")
    return out


def domain_error(exc: DomainError) -> CommandError:
    """`code: sentence`, plus the field details the sentence does not already say."""
    details = []
    for field, messages in exc.extra.items():
        new = [m for m in messages if str(m) not in exc.message]
        if new and f"{field}: {' '.join(new)}" not in exc.message:
            details.append(f"{field}: {' '.join(new)}")
    suffix = f" ({'; '.join(details)})" if details else ""
    return CommandError(f"{exc.code}: {exc.message}{suffix}")
