"""Audit the books: recompute every counter from the ledger rows and list the differences.

The ledger is what the services write once and never move: sale lines (quantities and
amounts charged), payments (amounts taken), refunds with their refund lines and payment
allocations (`RefundPayment`). The counters are what the services move under the sale's
lock so that rules can be checked on one row: `SaleLine.refunded_*`,
`Payment.refunded_amount`, `Sale.amount_paid` / `amount_refunded` / `refunded_*` /
`status`, `Customer.store_balance`. A difference is a bug (or a hand edit) to look at.

What a refund counts for: a refund that failed at the gateway was compensated, and an
imported refund that was withdrawn or replaced (`withdrawn_at`) was reversed, so neither
counts; a pending refund holds its counters until the gateway answers (settle.py), and a
pending refund that needs attention (one payment refused after another went back) still
holds them, so both count. An allocation's own status does not matter: the refund's does.

Checked, each by one set-based statement (GROUP BY aggregates joined to the counter rows
and compared in the database; only the rows that differ come back), so the number of
queries does not grow with the number of sales:

- sale lines: `refunded_quantity`, `refunded_amount`, `refunded_tax` = the sums of the
  live refunds' lines;
- payments: `refunded_amount` = the sum of the live refunds' allocations;
- sales: `units`, `subtotal`, `tax_total`, `total` = the sums of their lines (and fees);
  `amount_paid` = the sum of their payments; `amount_refunded`, `refunded_units`,
  `refunded_*_fee` = the sums of their live refunds; `cancelled`: a cancelled sale (one
  with its SaleCancellation row) that was paid has exactly one live cancellation refund,
  and a sale that is not cancelled has none; `cancellation`: a sale whose status is
  cancelled has its SaleCancellation row, and a sale with the row is cancelled (the
  ledger writes both together; no constraint can span the two tables); `status` = what
  `Sale.compute_status` says of the counters recomputed here;
- refunds (every one, live or not): `units`, `lines_amount`, `tax_amount` = the sums of
  its lines, `total` = the sum of its allocations;
- customers: `store_balance` = the sum of the live store-balance refunds of their sales
  (nothing else moves a store balance).

- products: `stock` = the sum of its StockMove rows (its ledger: the opening stock, staff
  and API adjustments, sales, sale edits, restocking refunds and cancels, each written
  with the counter by sales.services.stock_move / product_save, or on PostgreSQL in the
  ledger's one statement). With sales asked, the products their lines sell.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.db import connection, models

from sales.models import (
    Customer,
    Payment,
    Product,
    Sale,
    SaleCancellation,
    SaleKind,
    SaleLine,
    SaleStatus,
    StockMove,
)

from ..models import Refund, RefundLine, RefundPayment, RefundStatus, RefundType

# Rows fetched at a time from a statement's differences (none are expected).
FETCH = 2000


@dataclass(frozen=True)
class Difference:
    """One counter that disagrees with the ledger: `stored` is on the row, `ledger` is
    what the ledger rows say it should be."""

    model: str  # "sale", "saleline", "payment", "refund", "customer", "product"
    pk: int
    field: str
    stored: Any
    ledger: Any
    sale_id: int | None = None

    def line(self) -> str:
        """One line a script can read: `key=value` pairs separated by spaces."""
        sale = (f" sale={self.sale_id}"
                if self.sale_id is not None and self.model != "sale" else "")
        return (f"{self.model}={self.pk}{sale} field={self.field} "
                f"stored={self.stored} ledger={self.ledger}")


def _t(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _c(model: type[models.Model], name: str) -> str:
    return connection.ops.quote_name(cast(models.Field, model._meta.get_field(name)).column)


def _in(column: str, ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    """` AND column IN (...)` and its parameters, or nothing when every sale is checked."""
    if ids is None:
        return "", []
    return f" AND {column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _live(alias: str) -> tuple[str, list[Any]]:
    """The refunds that count: not failed, not withdrawn (nor replaced)."""
    return (f"{alias}.{_c(Refund, 'status')} <> %s AND {alias}.{_c(Refund, 'withdrawn_at')} "
            "IS NULL", [RefundStatus.FAILED.value])


def _rows(sql: str, params: list[Any]) -> Iterator[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(FETCH):
            yield from batch


def _differences(model: str, rows: Iterable[tuple], fields: Sequence[str],
                 *, with_sale: bool = True) -> Iterator[Difference]:
    """Rows of (pk, [sale_id,] stored_1, ledger_1, stored_2, ledger_2, ...)."""
    for row in rows:
        pk, rest = row[0], row[1:]
        sale_id = None
        if with_sale:
            sale_id, rest = rest[0], rest[1:]
        for i, name in enumerate(fields):
            stored, ledger = rest[2 * i], rest[2 * i + 1]
            if stored != ledger:
                yield Difference(model, pk, name, stored, ledger, sale_id)


def _compare(pairs: Sequence[tuple[str, str]]) -> str:
    """`a <> b OR c <> d ...`: a row comes back when any pair differs."""
    return " OR ".join(f"({stored}) <> ({ledger})" for stored, ledger in pairs)


def _select(pairs: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{stored}, {ledger}" for stored, ledger in pairs)


def _ledger_sums(model: type[models.Model], key: str, sums: dict[str, str],
                 sale_ids: Sequence[int] | None, *, counting: bool) -> tuple[str, list[Any]]:
    """`SELECT key AS k, SUM(column) AS alias, ...` over a ledger table (refund lines or
    allocations) grouped by `key`, of the refunds of the sales asked; `counting`: only of
    the refunds that count (`_live`)."""
    live, params = _live("r") if counting else ("1 = 1", [])
    where_r, p_r = _in(f"r.{_c(Refund, 'sale')}", sale_ids)
    columns = ", ".join(f"SUM(x.{_c(model, column)}) AS {alias}"
                        for alias, column in sums.items())
    sql = f"""SELECT x.{_c(model, key)} AS k, {columns}
        FROM {_t(model)} x JOIN {_t(Refund)} r ON r.id = x.{_c(model, 'refund')}
        WHERE {live}{where_r} GROUP BY x.{_c(model, key)}"""
    return sql, params + p_r


def _line_differences(sale_ids: Sequence[int] | None) -> Iterator[Difference]:
    sums, p_g = _ledger_sums(RefundLine, "sale_line",
                             {"q": "quantity", "a": "amount", "t": "tax_amount"}, sale_ids,
                             counting=True)
    where_l, p_l = _in(f"l.{_c(SaleLine, 'sale')}", sale_ids)
    fields = ["refunded_quantity", "refunded_amount", "refunded_tax"]
    pairs = [(f"l.{_c(SaleLine, f)}", f"COALESCE(g.{alias}, 0)")
             for f, alias in zip(fields, "qat", strict=True)]
    sql = f"""
        SELECT l.id, l.{_c(SaleLine, 'sale')}, {_select(pairs)}
        FROM {_t(SaleLine)} l LEFT JOIN ({sums}) g ON g.k = l.id
        WHERE ({_compare(pairs)}){where_l}
        ORDER BY l.id"""
    yield from _differences("saleline", _rows(sql, p_g + p_l), fields)


def _payment_differences(sale_ids: Sequence[int] | None) -> Iterator[Difference]:
    sums, p_g = _ledger_sums(RefundPayment, "payment", {"a": "amount"}, sale_ids,
                             counting=True)
    where_p, p_p = _in(f"p.{_c(Payment, 'sale')}", sale_ids)
    pairs = [(f"p.{_c(Payment, 'refunded_amount')}", "COALESCE(g.a, 0)")]
    sql = f"""
        SELECT p.id, p.{_c(Payment, 'sale')}, {_select(pairs)}
        FROM {_t(Payment)} p LEFT JOIN ({sums}) g ON g.k = p.id
        WHERE ({_compare(pairs)}){where_p}
        ORDER BY p.id"""
    yield from _differences("payment", _rows(sql, p_g + p_p), ["refunded_amount"])


def _status_sql(s: str, v: dict[str, str]) -> tuple[str, list[Any]]:
    """`Sale.compute_status` in SQL, of the sale's own kind, fees and stored cancelled
    status (whether it has its cancellation row is the `cancellation` check) and of the
    counters recomputed from the ledger (`v`: counter name → SQL expression).
    tests/refunds/test_audit_books.py runs it over sales in every status, clean and with
    each counter and the status corrupted."""
    refunded, units, paid = v["amount_refunded"], v["refunded_units"], v["amount_paid"]
    fees_left = " + ".join(
        f"({s}.{_c(Sale, fee)} - {v['refunded_' + fee]})"
        for fee in ("processing_fee", "reseller_fee", "shipping_fee")
    )
    sql = f"""CASE
        WHEN {s}.{_c(Sale, 'status')} = %s THEN %s
        WHEN {s}.{_c(Sale, 'kind')} = %s THEN %s
        WHEN {refunded} > 0 OR {units} > 0 THEN
            CASE WHEN {units} >= {v['units']} AND {fees_left} = 0 AND {refunded} >= {paid}
                 THEN %s ELSE %s END
        WHEN {paid} <= 0 THEN %s
        WHEN {paid} < {v['total']} THEN %s
        ELSE %s END"""
    return sql, [SaleStatus.CANCELLED.value, SaleStatus.CANCELLED.value,
                 SaleKind.QUOTE.value, SaleStatus.QUOTE.value,
                 SaleStatus.REFUNDED.value, SaleStatus.PARTIALLY_REFUNDED.value,
                 SaleStatus.UNPAID.value, SaleStatus.PARTIALLY_PAID.value,
                 SaleStatus.PAID.value]


SALE_FIELDS = [
    "units", "subtotal", "tax_total", "total", "amount_paid", "amount_refunded",
    "refunded_units", "refunded_processing_fee", "refunded_reseller_fee",
    "refunded_shipping_fee", "cancelled", "cancellation", "status",
]


def _sale_differences(sale_ids: Sequence[int] | None) -> Iterator[Difference]:
    live, live_params = _live("r")
    s, sl, p, r = _t(Sale), _t(SaleLine), _t(Payment), _t(Refund)
    where_l, p_l = _in(f"x.{_c(SaleLine, 'sale')}", sale_ids)
    where_p, p_p = _in(f"x.{_c(Payment, 'sale')}", sale_ids)
    where_r, p_r = _in(f"r.{_c(Refund, 'sale')}", sale_ids)
    where_s, p_s = _in("s.id", sale_ids)
    fee = {f: f"s.{_c(Sale, f)}" for f in ("processing_fee", "reseller_fee", "shipping_fee")}
    v = {
        "units": "COALESCE(l.units, 0)",
        "subtotal": "COALESCE(l.net, 0)",
        "tax_total": "COALESCE(l.tax, 0)",
        "total": (f"COALESCE(l.net, 0) + COALESCE(l.tax, 0) + {fee['processing_fee']} + "
                  f"{fee['reseller_fee']} + {fee['shipping_fee']}"),
        "amount_paid": "COALESCE(p.paid, 0)",
        "amount_refunded": "COALESCE(g.total, 0)",
        "refunded_units": "COALESCE(g.units, 0)",
        "refunded_processing_fee": "COALESCE(g.pf, 0)",
        "refunded_reseller_fee": "COALESCE(g.rf, 0)",
        "refunded_shipping_fee": "COALESCE(g.sf, 0)",
    }
    has_row = "CASE WHEN sc.sale_id IS NULL THEN 0 ELSE 1 END"
    # 1: cancelled (its row) and paid; 0: not cancelled, or cancelled with nothing paid
    # (no refund). Of the payments, not of the stored amount_paid: one wrong counter, one
    # difference.
    stored_cancelled = (f"CASE WHEN sc.sale_id IS NOT NULL AND {v['amount_paid']} > 0 "
                        "THEN 1 ELSE 0 END")
    # The status says cancelled exactly when the sale has its cancellation row (a
    # constraint cannot span the two tables; the ledger writes both together).
    status_cancelled = f"CASE WHEN s.{_c(Sale, 'status')} = %s THEN 1 ELSE 0 END"
    status, status_params = _status_sql("s", v)
    pairs = [(f"s.{_c(Sale, name)}", v[name]) for name in SALE_FIELDS[:-3]]
    pairs += [(stored_cancelled, "COALESCE(g.cancels, 0)"),
              (status_cancelled, has_row),
              (f"s.{_c(Sale, 'status')}", status)]
    sql = f"""
        SELECT s.id, s.id, {_select(pairs)}
        FROM {s} s
        LEFT JOIN (
            SELECT x.{_c(SaleLine, 'sale')} AS sale_id, SUM(x.{_c(SaleLine, 'quantity')}) AS units,
                   SUM(x.{_c(SaleLine, 'net_amount')}) AS net,
                   SUM(x.{_c(SaleLine, 'tax_amount')}) AS tax
            FROM {sl} x WHERE 1 = 1{where_l} GROUP BY x.{_c(SaleLine, 'sale')}
        ) l ON l.sale_id = s.id
        LEFT JOIN (
            SELECT x.{_c(Payment, 'sale')} AS sale_id, SUM(x.{_c(Payment, 'amount')}) AS paid
            FROM {p} x WHERE 1 = 1{where_p} GROUP BY x.{_c(Payment, 'sale')}
        ) p ON p.sale_id = s.id
        LEFT JOIN (
            SELECT r.{_c(Refund, 'sale')} AS sale_id, SUM(r.{_c(Refund, 'total')}) AS total,
                   SUM(r.{_c(Refund, 'units')}) AS units,
                   SUM(r.{_c(Refund, 'processing_fee')}) AS pf,
                   SUM(r.{_c(Refund, 'reseller_fee')}) AS rf,
                   SUM(r.{_c(Refund, 'shipping_fee')}) AS sf,
                   SUM(CASE WHEN r.{_c(Refund, 'type')} = %s THEN 1 ELSE 0 END) AS cancels
            FROM {r} r WHERE {live}{where_r} GROUP BY r.{_c(Refund, 'sale')}
        ) g ON g.sale_id = s.id
        LEFT JOIN {_t(SaleCancellation)} sc ON sc.{_c(SaleCancellation, 'sale')} = s.id
        WHERE ({_compare(pairs)}){where_s}
        ORDER BY s.id"""
    # Parameters in the order their placeholders appear: the SELECT list (the cancelled
    # status, the status CASE), the refunds' subquery, then the WHERE (the same again).
    cases = [SaleStatus.CANCELLED.value, *status_params]
    params = (cases + p_l + p_p + [RefundType.CANCELLATION.value] + live_params + p_r
              + cases + p_s)
    yield from _differences("sale", _rows(sql, params), SALE_FIELDS)


REFUND_FIELDS = ["units", "lines_amount", "tax_amount", "total"]


def _refund_differences(sale_ids: Sequence[int] | None) -> Iterator[Difference]:
    lines, p_l = _ledger_sums(RefundLine, "refund",
                              {"q": "quantity", "a": "amount", "t": "tax_amount"}, sale_ids,
                              counting=False)
    money, p_m = _ledger_sums(RefundPayment, "refund", {"a": "amount"}, sale_ids,
                              counting=False)
    where_f, p_f = _in(f"f.{_c(Refund, 'sale')}", sale_ids)
    pairs = [
        (f"f.{_c(Refund, 'units')}", "COALESCE(l.q, 0)"),
        (f"f.{_c(Refund, 'lines_amount')}", "COALESCE(l.a, 0)"),
        (f"f.{_c(Refund, 'tax_amount')}", "COALESCE(l.t, 0)"),
        (f"f.{_c(Refund, 'total')}", "COALESCE(m.a, 0)"),
    ]
    sql = f"""
        SELECT f.id, f.{_c(Refund, 'sale')}, {_select(pairs)}
        FROM {_t(Refund)} f
        LEFT JOIN ({lines}) l ON l.k = f.id
        LEFT JOIN ({money}) m ON m.k = f.id
        WHERE ({_compare(pairs)}){where_f}
        ORDER BY f.id"""
    yield from _differences("refund", _rows(sql, p_l + p_m + p_f), REFUND_FIELDS)


def _customer_differences(sale_ids: Sequence[int] | None) -> Iterator[Difference]:
    live, live_params = _live("r")
    c, s, r = _t(Customer), _t(Sale), _t(Refund)
    customer = f"s.{_c(Sale, 'customer')}"
    where_c, p_c = "", cast(list[Any], [])
    if sale_ids is not None:
        inner, p_c = _in("s2.id", sale_ids)
        where_c = (f" AND c.id IN (SELECT s2.{_c(Sale, 'customer')} FROM {s} s2 "
                   f"WHERE 1 = 1{inner})")
    pairs = [(f"c.{_c(Customer, 'store_balance')}", "COALESCE(g.credit, 0)")]
    sql = f"""
        SELECT c.id, {_select(pairs)}
        FROM {c} c LEFT JOIN (
            SELECT {customer} AS customer_id, SUM(r.{_c(Refund, 'total')}) AS credit
            FROM {r} r JOIN {s} s ON s.id = r.{_c(Refund, 'sale')}
            WHERE {live} AND r.{_c(Refund, 'type')} = %s AND {customer} IS NOT NULL
            GROUP BY {customer}
        ) g ON g.customer_id = c.id
        WHERE ({_compare(pairs)}){where_c}
        ORDER BY c.id"""
    params = live_params + [RefundType.BALANCE_REFUND.value] + p_c
    yield from _differences("customer", _rows(sql, params), ["store_balance"], with_sale=False)


def _stock_differences(sale_ids: Sequence[int] | None) -> Iterator[Difference]:
    """Each product's stock against the sum of its StockMove rows (of the products these
    sales' lines sell, when sales are asked)."""
    where_p, p_p = "", cast(list[Any], [])
    if sale_ids is not None:
        inner, p_p = _in(f"l.{_c(SaleLine, 'sale')}", sale_ids)
        where_p = (f" AND p.id IN (SELECT l.{_c(SaleLine, 'product')} FROM {_t(SaleLine)} l "
                   f"WHERE l.{_c(SaleLine, 'product')} IS NOT NULL{inner})")
    product = _c(StockMove, "product")
    pairs = [(f"p.{_c(Product, 'stock')}", "COALESCE(g.moved, 0)")]
    sql = f"""
        SELECT p.id, {_select(pairs)}
        FROM {_t(Product)} p LEFT JOIN (
            SELECT m.{product} AS product_id, SUM(m.{_c(StockMove, 'delta')}) AS moved
            FROM {_t(StockMove)} m GROUP BY m.{product}
        ) g ON g.product_id = p.id
        WHERE ({_compare(pairs)}){where_p}
        ORDER BY p.id"""
    yield from _differences("product", _rows(sql, p_p), ["stock"], with_sale=False)


CHECKS = (_sale_differences, _line_differences, _payment_differences, _refund_differences,
          _customer_differences, _stock_differences)


def books_audit_iter(sale_ids: Iterable[int] | None = None) -> Iterator[Difference]:
    """The differences, one statement after another (a fixed number of queries)."""
    ids = None if sale_ids is None else sorted(set(sale_ids))
    if ids == []:
        return
    for check in CHECKS:
        yield from check(ids)


def books_audit(sale_ids: Iterable[int] | None = None) -> list[Difference]:
    """Every counter that disagrees with the ledger rows (of these sales, or of all):
    an empty list when the books balance."""
    return list(books_audit_iter(sale_ids))


__all__ = ["Difference", "books_audit", "books_audit_iter"]
