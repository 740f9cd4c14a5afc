"""Reads of sales that are more than a .get(), and the row locks, in one fixed order.

Every writer locks the sale row first, then its lines ordered by pk, then its payments
ordered by pk. Nobody invents another order, so two writers can never deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from backoffice.errors import SaleNotFoundError

from .models import Payment, Sale, SaleLine


def sale_lookup(ident: int | str) -> Q:
    """A sale named by its id, its number (S-000123) or the integrator's external id."""
    text = str(ident).strip()
    query = Q(number=text) | Q(external_id=text)
    if text.isdigit():
        query |= Q(pk=int(text))
    return query


def sale_resolve_id(ident: int | str) -> int:
    text = str(ident).strip()
    if not text:
        raise SaleNotFoundError("No sale was named.")
    # An id wins over a number or an external id that happens to look the same.
    ids = list(Sale.objects.filter(sale_lookup(text)).values_list("pk", "external_id")[:3])
    if not ids:
        raise SaleNotFoundError(f"No sale with id, number or external id {text!r}.")
    if text.isdigit():
        for pk, _ in ids:
            if pk == int(text):
                return pk
    return ids[0][0]


def sale_get(ident: int | str) -> Sale:
    return Sale.objects.select_related("customer").get(pk=sale_resolve_id(ident))


def sale_detail_queryset() -> QuerySet[Sale]:
    return Sale.objects.select_related("customer").prefetch_related("lines", "payments")


@dataclass
class LockedSale:
    sale: Sale
    lines: list[SaleLine]
    payments: list[Payment]


def sale_lock(sale_id: int) -> LockedSale:
    """Lock a sale, its lines and its payments, in that order. Call inside atomic()."""
    try:
        sale = Sale.objects.select_for_update(of=("self",)).select_related("customer").get(
            pk=sale_id
        )
    except Sale.DoesNotExist:
        raise SaleNotFoundError(f"No sale with id {sale_id}.") from None
    lines = list(SaleLine.objects.select_for_update().filter(sale_id=sale_id).order_by("pk"))
    payments = list(Payment.objects.select_for_update().filter(sale_id=sale_id).order_by("pk"))
    return LockedSale(sale=sale, lines=lines, payments=payments)


def sale_snapshot(sale_id: int) -> LockedSale:
    """The same rows without locks, for previews."""
    try:
        sale = Sale.objects.select_related("customer").get(pk=sale_id)
    except Sale.DoesNotExist:
        raise SaleNotFoundError(f"No sale with id {sale_id}.") from None
    lines = list(SaleLine.objects.filter(sale_id=sale_id).order_by("pk"))
    payments = list(Payment.objects.filter(sale_id=sale_id).order_by("pk"))
    return LockedSale(sale=sale, lines=lines, payments=payments)
