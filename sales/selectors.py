"""Reads of sales that are more than a .get(), and the row locks, in one fixed order.

Every writer locks the sale row first, then its lines ordered by pk, then its payments
ordered by pk. Nobody invents another order, so two writers can never deadlock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from django.db import connection
from django.db.models import Q, QuerySet

from backoffice.errors import AmbiguousSaleError, DomainError, SaleNotFoundError

from .models import Customer, Payment, Sale, SaleLine

T = TypeVar("T")


SALE_ID_PATTERN = re.compile(r"[0-9]{1,18}")
def parse_sale_ident(ident: int | str) -> tuple[str, int | None]:
    """(the ident as text, the id it may be): only plain ASCII digits that fit a bigint are
    an id. A NUL can name no sale (PostgreSQL refuses it in text)."""
    text = str(ident).strip()
    if "\x00" in text:
        raise SaleNotFoundError("No sale with that id, number or external id.")
    return text, (int(text) if SALE_ID_PATTERN.fullmatch(text) else None)


def sale_lookup(ident: int | str) -> Q:
    """Every sale a name may mean (its id, its number S-000123, or the integrator's
    external id): for searches. To act on a sale, resolve it with sale_resolve_id."""
    text, pk = parse_sale_ident(ident)
    query = Q(number=text) | Q(external_id=text)
    if pk is not None:
        query |= Q(pk=pk)
    return query


def sale_pick(text: str, pk: int | None, matches: Iterable[tuple[int, str | None,
                                                             str | None]]) -> int:
    """The one rule that turns a name into a sale, given the rows (pk, number, external
    id) that may match it: exactly one sale, or SaleNotFoundError, or AmbiguousSaleError
    (409) when the name means two sales (an id and another sale's external id made of
    the same digits, or a number and an external id stored before the rule)."""
    if not text:
        raise SaleNotFoundError("No sale was named.")
    found = {
        row_pk for row_pk, number, external_id in matches
        if row_pk == pk or text in (number, external_id)
    }
    if not found:
        raise SaleNotFoundError(f"No sale with id, number or external id {text!r}.")
    if len(found) > 1:
        raise AmbiguousSaleError(
            f"{text!r} names more than one sale (ids {', '.join(map(str, sorted(found)))}): "
            "name the sale by its number (S-000123) instead.",
            extra={"sale": [f"Ambiguous: sales {', '.join(map(str, sorted(found)))}."]},
        )
    return found.pop()


def sale_resolve_many(idents: Iterable[int | str]) -> tuple[dict[str, int],
                                                            dict[str, DomainError]]:
    """Many names in one query: ({name: sale id}, {name: why it names no one sale}).
    Names are taken stripped, as parse_sale_ident reads them."""
    parsed: dict[str, int | None] = {}
    failed: dict[str, DomainError] = {}
    for ident in idents:
        try:
            text, pk = parse_sale_ident(ident)
        except SaleNotFoundError as exc:
            failed[str(ident).strip()] = exc
            continue
        parsed[text] = pk
    names = [t for t in parsed if t]
    rows = list(
        Sale.objects.filter(
            Q(number__in=names) | Q(external_id__in=names)
            | Q(pk__in={pk for pk in parsed.values() if pk is not None})
        ).values_list("pk", "number", "external_id")
    ) if names else []
    found: dict[str, int] = {}
    for text, pk in parsed.items():
        try:
            found[text] = sale_pick(text, pk, rows)
        except DomainError as exc:
            failed[text] = exc
    return found, failed


def sale_resolve_id(ident: int | str) -> int:
    """The id of the one sale that ident (an id, a number or an external id) names; every
    door (API, admin, commands, bulk import) resolves a sale through here."""
    text, pk = parse_sale_ident(ident)
    if not text:
        raise SaleNotFoundError("No sale was named.")
    rows = Sale.objects.filter(sale_lookup(text)).values_list("pk", "number", "external_id")
    return sale_pick(text, pk, rows[:3])


def with_sale_id(ident: int | str, work: Callable[[int], T]) -> T:
    """work(sale_id) for the one sale that ident names (sale_resolve_id)."""
    return work(sale_resolve_id(ident))


def sale_get(ident: int | str) -> Sale:
    return Sale.objects.select_related("customer", "cancellation").get(
        pk=sale_resolve_id(ident))


def sale_detail_queryset() -> QuerySet[Sale]:
    return Sale.objects.select_related("customer", "cancellation").prefetch_related(
        "lines", "payments")


@dataclass
class LockedSale:
    sale: Sale
    lines: list[SaleLine]
    payments: list[Payment]


def sale_lock(sale_id: int) -> LockedSale:
    """Lock a sale, its lines and its payments, in that order. Call inside atomic()."""
    if connection.vendor == "postgresql":
        return _load_postgres(sale_id, lock=True)
    try:
        sale = Sale.objects.select_for_update(of=("self",)).select_related(
            "customer", "cancellation").get(pk=sale_id)
    except Sale.DoesNotExist:
        raise SaleNotFoundError(f"No sale with id {sale_id}.") from None
    lines = list(SaleLine.objects.select_for_update().filter(sale_id=sale_id).order_by("pk"))
    payments = list(Payment.objects.select_for_update().filter(sale_id=sale_id).order_by("pk"))
    return LockedSale(sale=sale, lines=lines, payments=payments)


def sale_snapshot(sale_id: int) -> LockedSale:
    """The same rows without locks, for previews."""
    if connection.vendor == "postgresql":
        return _load_postgres(sale_id, lock=False)
    try:
        sale = Sale.objects.select_related("customer", "cancellation").get(pk=sale_id)
    except Sale.DoesNotExist:
        raise SaleNotFoundError(f"No sale with id {sale_id}.") from None
    lines = list(SaleLine.objects.filter(sale_id=sale_id).order_by("pk"))
    payments = list(Payment.objects.filter(sale_id=sale_id).order_by("pk"))
    return LockedSale(sale=sale, lines=lines, payments=payments)


# On PostgreSQL the sale, its customer, its lines and its payments come back in one
# statement (one round trip instead of three ORM queries: the refund's hot path). The
# locks are taken in the same fixed order: the sale row, then the lines by pk, then the
# payments by pk (the target list is evaluated left to right, each CTE's rows in its
# ORDER BY). The rows become the same model instances the ORM would build
# (tests/sales/test_sale_lock.py compares them field by field).
_LOAD_SQL: dict[bool, str] = {}


def _load_sql(lock: bool) -> str:
    if lock not in _LOAD_SQL:
        qn = connection.ops.quote_name
        sale, line, pay, cust = (qn(m._meta.db_table) for m in (Sale, SaleLine, Payment,
                                                                 Customer))
        for_update = " FOR UPDATE" if lock else ""
        _LOAD_SQL[lock] = (
            f"WITH s AS (SELECT * FROM {sale} WHERE id = %(id)s{for_update}), "
            f"l AS (SELECT * FROM {line} WHERE sale_id = %(id)s ORDER BY id{for_update}), "
            f"p AS (SELECT * FROM {pay} WHERE sale_id = %(id)s ORDER BY id{for_update}) "
            "SELECT (SELECT row_to_json(s) FROM s)::text, "
            f"(SELECT row_to_json(c) FROM {cust} c WHERE c.id = (SELECT customer_id FROM s))"
            "::text, "
            "(SELECT coalesce(json_agg(l ORDER BY l.id), '[]'::json) FROM l)::text, "
            "(SELECT coalesce(json_agg(p ORDER BY p.id), '[]'::json) FROM p)::text"
        )
    return _LOAD_SQL[lock]


def _instance(model, row: dict):
    fields = model._meta.concrete_fields
    values = [f.to_python(row[f.column]) if row[f.column] is not None else None
              for f in fields]
    return model.from_db(connection.alias, [f.attname for f in fields], values)


def _load_postgres(sale_id: int, *, lock: bool) -> LockedSale:
    with connection.cursor() as cursor:
        cursor.execute(_load_sql(lock), {"id": sale_id})
        sale_row, customer_row, lines_json, payments_json = cursor.fetchone()
    if sale_row is None:
        raise SaleNotFoundError(f"No sale with id {sale_id}.")
    # As text, decoded here: a tax rate stays an exact Decimal, never a float.
    sale = _instance(Sale, json.loads(sale_row, parse_float=Decimal))
    sale.customer = (_instance(Customer, json.loads(customer_row, parse_float=Decimal))
                     if customer_row else None)
    lines = [_instance(SaleLine, row) for row in json.loads(lines_json, parse_float=Decimal)]
    payments = [_instance(Payment, row)
                for row in json.loads(payments_json, parse_float=Decimal)]
    return LockedSale(sale=sale, lines=lines, payments=payments)
