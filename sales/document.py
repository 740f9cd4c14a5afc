"""The sale document: what GET /sales/{id}/ (and every answer that shows a sale) returns.

SaleSerializer (sales/api/serializers.py) is the single definition of its shape and of
its schema. It is built two ways that give the same JSON (tests/api/test_sale_json.py
compares them for varied sales): by the ORM and the serializer (`sale_detail`), and on
PostgreSQL in one query (`sale_detail_json`, the API's hot read path).

Other apps add lists of their own rows to it without sales importing them: the refunds
app registers the sale's refunds (`SaleDocumentList`, `sale_document_add_list`) when it
is ready. The document lists the sale's lines and payments, then the registered lists
in the order they were added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Prefetch, QuerySet

from .models import Customer, Payment, Sale, SaleCancellation, SaleLine
from .selectors import parse_sale_ident, sale_detail_queryset, sale_lookup, sale_pick


@dataclass(frozen=True)
class SaleDocumentList:
    """Rows of another app that the sale document lists under `key`, which is also the
    reverse relation from Sale to them (the sale's refunds: "refunds")."""

    key: str
    # The ORM path: the rows, in the document's order (a Prefetch queryset).
    rows: Callable[[], QuerySet]
    # The PostgreSQL path: a query giving the JSON array of the rows of the sale whose id
    # is the given SQL expression ("s.id"), each as SaleSerializer renders it.
    json_sql: Callable[[str], str]


_LISTS: dict[str, SaleDocumentList] = {}
# The document's query, built on first use (after every app is ready), per
# customer_details.
_SALE_JSON_SQL: dict[bool, str] = {}


def sale_document_add_list(extra: SaleDocumentList) -> None:
    """Add a list to the sale document (from an app's AppConfig.ready())."""
    _LISTS[extra.key] = extra
    _SALE_JSON_SQL.clear()


def sale_document_lists() -> tuple[SaleDocumentList, ...]:
    return tuple(_LISTS.values())


def sale_detail(ident: int | str) -> Sale:
    """One sale with its lines, payments and the registered lists, in one query each; the
    name is resolved by sale_pick, the rule every door follows."""
    candidates = list(
        sale_detail_queryset()
        .prefetch_related(*(Prefetch(extra.key, queryset=extra.rows())
                            for extra in sale_document_lists()))
        .filter(sale_lookup(ident))[:3]
    )
    text, pk = parse_sale_ident(ident)
    sale_id = sale_pick(text, pk, [(s.pk, s.number, s.external_id) for s in candidates])
    return next(s for s in candidates if s.pk == sale_id)


# The sale as JSON, built by PostgreSQL (the API's hot read path).
#
# GET /api/v2/sales/{id}/ is the integrations' most frequent call. Four ORM queries and
# the nested serializers cost ~7 CPU-ms a request; one query in which PostgreSQL builds
# the document costs well under 1. The document is exactly SaleSerializer's (same keys in
# the same order, same values: tests/api/test_sale_json.py compares the two for varied
# sales), so the serializer stays the single definition of the shape and the schema.


def sql_datetime(column: str) -> str:
    """A timestamptz as DRF renders it in UTC: ISO 8601, 'Z', microseconds only if any."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL "
        f"WHEN date_part('microseconds', {column})::bigint %% 1000000 = 0 "
        f"""THEN to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
        f"""ELSE to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
    )


def sql_json_object(pairs: list[tuple[str, str]]) -> str:
    """json_build_object('key', expression, ...), in the order given."""
    return "json_build_object(" + ", ".join(f"'{k}', {v}" for k, v in pairs) + ")"


def _sale_json_sql(customer_details: bool) -> str:
    line, pay = SaleLine._meta.db_table, Payment._meta.db_table
    customer = sql_json_object([(k, f"c.{k}") for k in (
        ("id", "name", "email", "phone") if customer_details else ("id",))])
    lines = sql_json_object([
        ("id", "l.id"), ("product_id", "l.product_id"), ("sku", "l.sku"),
        ("description", "l.description"), ("quantity", "l.quantity"),
        ("refunded_quantity", "l.refunded_quantity"), ("unit_price", "l.unit_price"),
        ("discount", "l.discount"), ("tax_rate", "l.tax_rate::text"),
        ("net_amount", "l.net_amount"), ("tax_amount", "l.tax_amount"),
        ("refunded_amount", "l.refunded_amount"), ("refunded_tax", "l.refunded_tax"),
    ])
    payments = sql_json_object([
        ("id", "p.id"), ("method", "p.method"), ("amount", "p.amount"),
        ("refunded_amount", "p.refunded_amount"), ("gateway", "p.gateway"),
        ("gateway_reference", "p.gateway_reference"),
        ("created_at", sql_datetime("p.created_at")),
    ])
    sale = sql_json_object([
        ("id", "s.id"), ("number", "s.number"), ("external_id", "s.external_id"),
        ("kind", "s.kind"), ("channel", "s.channel"), ("status", "s.status"),
        ("currency", "s.currency"),
        ("customer", f"CASE WHEN c.id IS NULL THEN NULL ELSE {customer} END"),
        ("processing_fee", "s.processing_fee"), ("reseller_fee", "s.reseller_fee"),
        ("shipping_fee", "s.shipping_fee"), ("order_discount", "s.order_discount"),
        ("subtotal", "s.subtotal"), ("tax_total", "s.tax_total"), ("total", "s.total"),
        ("amount_paid", "s.amount_paid"), ("balance_due", "s.total - s.amount_paid"),
        ("amount_refunded", "s.amount_refunded"),
        ("refundable_amount", "s.amount_paid - s.amount_refunded"),
        ("units", "s.units"), ("refunded_units", "s.refunded_units"),
        ("created_at", sql_datetime("s.created_at")),
        ("updated_at", sql_datetime("s.updated_at")),
        ("paid_at", sql_datetime("s.paid_at")),
        ("cancelled_at", sql_datetime("sc.cancelled_at")),
        ("cancel_reason", "coalesce(sc.reason, '')"),
        ("lines", f"(SELECT coalesce(json_agg({lines} ORDER BY l.id), '[]'::json) "
                  f"FROM {line} l WHERE l.sale_id = s.id)"),
        ("payments", f"(SELECT coalesce(json_agg({payments} ORDER BY p.id), '[]'::json) "
                     f"FROM {pay} p WHERE p.sale_id = s.id)"),
        *((extra.key, f"({extra.json_sql('s.id')})") for extra in sale_document_lists()),
    ])
    return (
        f"SELECT s.id, {sale}::text FROM {Sale._meta.db_table} s "
        f"LEFT JOIN {Customer._meta.db_table} c ON c.id = s.customer_id "
        f"LEFT JOIN {SaleCancellation._meta.db_table} sc ON sc.sale_id = s.id "
        "WHERE s.id = %(pk)s OR s.number = %(text)s OR s.external_id = %(text)s "
        # Two rows: the name means two sales (sale_pick refuses it).
        "ORDER BY s.id LIMIT 2"
    )


def sale_json_supported() -> bool:
    """The PostgreSQL path renders datetimes in UTC, as DRF does when TIME_ZONE is UTC."""
    return connection.vendor == "postgresql" and settings.TIME_ZONE == "UTC"


def sale_detail_json(ident: int | str, *, customer_details: bool = False) -> str:
    """The sale named by ident (id, number or external id) as SaleSerializer's JSON, in
    one query; the customer's name, email and phone only with customer_details.
    PostgreSQL only (sale_json_supported())."""
    if customer_details not in _SALE_JSON_SQL:
        _SALE_JSON_SQL[customer_details] = _sale_json_sql(customer_details)
    text, pk = parse_sale_ident(ident)
    with connection.cursor() as cursor:
        cursor.execute(_SALE_JSON_SQL[customer_details], {"pk": pk, "text": text})
        rows = cursor.fetchall()
    if len(rows) != 1:
        sale_pick(text, pk, [(sale_id, None, text) for sale_id, _ in rows])  # raises
    return rows[0][1]
