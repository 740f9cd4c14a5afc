"""`{% load money %}` then `{{ amount|money:sale.currency }}` → £104.03, ¥1,200."""

from django import template

from backoffice.money import format_money

register = template.Library()


@register.filter(name="money")
def money(amount, currency: str) -> str:
    if amount is None or amount == "":
        return ""
    return format_money(int(amount), currency or "GBP")
