"""Template helpers of the staff admin: money formatting and the dashboard."""

from __future__ import annotations

from django import template

from backoffice.money import format_money

register = template.Library()


@register.filter
def money(amount, currency):
    """{{ sale.total|money:sale.currency }} -> £104.03"""
    if amount is None or amount == "":
        return "—"
    return format_money(int(amount), currency or "GBP")


@register.simple_tag(takes_context=True)
def refund_dashboard(context):
    """The dashboard's figures, for staff who may see refunds (else None)."""
    request = context.get("request")
    if request is None or not request.user.has_perm("refunds.view_refund"):
        return None
    from ..selectors import refund_dashboard as build

    return build()
