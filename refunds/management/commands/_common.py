"""What the money-moving commands share: naming a sale, printing a plan, the actor."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from backoffice.errors import DomainError
from backoffice.money import format_money
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


def domain_error(exc: DomainError) -> CommandError:
    details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.extra.items())
    return CommandError(f"{exc.code}: {exc.message}" + (f" ({details})" if details else ""))
