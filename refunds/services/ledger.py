"""The books: which counters a refund moves, by how much, and the one place they are written.

An `Effect` is what a refund (or a cancel, or a batch of imported refunds) moves, as
deltas keyed by primary key:

- `lines`: each sale line's (refunded_quantity, refunded_amount, refunded_tax);
- `payments`: each payment's refunded_amount;
- `stock`: units each product gets back (restock);
- `store_credit`: what each customer's store balance is credited;
- `sales`: each sale's (amount_refunded, refunded_units, and each fee's refunded amount);
- `cancelled`: +1 for a sale that this effect cancels, -1 for one it un-cancels: its
  SaleCancellation row is inserted or deleted with the status (so a cancellation the
  gateway refused leaves no trace of it).

It is computed from a plan (`effect_of_plan`, before writing) or from the stored ledger
rows (`effect_of_refund`: the refund, its lines and allocations), and the two agree.
Effects add up and subtract (`a + b`; a replaced import moves `new - old`), and
`effect.reversed()` undoes one (a refund the gateway refused). `effect.apply(sales)` moves
the locked rows in memory (and recomputes each sale's status); `ledger_write` writes it,
optionally with the new ledger rows: through the ORM, or on PostgreSQL as the single
statement of write_pg.py. It is the only code that branches on the database.

A new counter is added here: a column in `COUNTERS`, its delta in `effect_of_plan` and
`effect_of_refund`. Adding, reversing, applying and writing follow from the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import connection, models
from django.db.models import Case, F, Value, When
from django.utils import timezone

from sales.choices import StockMoveKind
from sales.models import Customer, Payment, Product, Sale, SaleCancellation, SaleLine
from sales.selectors import LockedSale
from sales.services import stock_move

from ..models import CustomerAlert, Refund, RefundLine, RefundPayment, RefundType
from .plan import RefundPlan
from .write_pg import Cancellations, StockMoves, write_postgres

Deltas = dict[int, tuple[int, ...]]

# The counters each table keeps, in the order of an Effect's tuples. One place.
COUNTERS: dict[str, tuple[type[models.Model], tuple[str, ...]]] = {
    "lines": (SaleLine, ("refunded_quantity", "refunded_amount", "refunded_tax")),
    "payments": (Payment, ("refunded_amount",)),
    "stock": (Product, ("stock",)),
    "store_credit": (Customer, ("store_balance",)),
    "sales": (Sale, ("amount_refunded", "refunded_units", "refunded_processing_fee",
                     "refunded_reseller_fee", "refunded_shipping_fee")),
}
# A sale's cancellation is its SaleCancellation row: an effect that cancels a sale (+1)
# inserts it, one that un-cancels it (-1) deletes it, with the sale's status.
CANCELLATION = cast(Any, Sale.cancellation).related  # the sale's cache of its row


def cancellation_made(sale: Sale) -> SaleCancellation:
    """The cancellation row a sale being cancelled holds in memory, unsaved (sale_cancel
    sets it before the effect is applied), read without a query. A cancelled sale always
    has its row: the ledger refuses to cancel one that holds none."""
    row = CANCELLATION.get_cached_value(sale, default=None)
    if row is None:
        raise ValueError(f"Sale {sale.pk} is cancelled without its SaleCancellation row.")
    return row

# PostgreSQL writes in one statement (write_pg.py); the ORM path is the portable one
# (SQLite, the embedded default). Tests write the same refunds both ways.
WRITE_IN_ONE_STATEMENT = True


def _combine(a: Deltas, b: Deltas, sign: int) -> Deltas:
    out = {pk: d for pk, d in a.items() if any(d)}
    for pk, d in b.items():
        old = out.get(pk)
        new = tuple(sign * x for x in d) if old is None else tuple(
            x + sign * y for x, y in zip(old, d, strict=True))
        if any(new):
            out[pk] = new
        else:
            out.pop(pk, None)
    return out


def _add(deltas: Deltas, pk: int, values: tuple[int, ...]) -> None:
    old = deltas.get(pk)
    deltas[pk] = values if old is None else tuple(
        x + y for x, y in zip(old, values, strict=True))


@dataclass(frozen=True)
class Effect:
    """What moves in the books. Rows whose deltas are all zero are left out."""

    lines: Deltas = field(default_factory=dict)
    payments: Deltas = field(default_factory=dict)
    stock: Deltas = field(default_factory=dict)
    store_credit: Deltas = field(default_factory=dict)
    sales: Deltas = field(default_factory=dict)
    cancelled: dict[int, int] = field(default_factory=dict)

    def _merge(self, other: Effect, sign: int) -> Effect:
        cancelled = dict(self.cancelled)
        for pk, c in other.cancelled.items():
            cancelled[pk] = cancelled.get(pk, 0) + sign * c
        return Effect(
            **{name: _combine(getattr(self, name), getattr(other, name), sign)
               for name in COUNTERS},
            cancelled={pk: c for pk, c in cancelled.items() if c},
        )

    def __add__(self, other: Effect) -> Effect:
        return self._merge(other, +1)

    def __sub__(self, other: Effect) -> Effect:
        return self._merge(other, -1)

    def reversed(self) -> Effect:
        return Effect()._merge(self, -1)

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in (*COUNTERS, "cancelled"))

    def apply(self, sales: Iterable[LockedSale]) -> None:
        """Move the locked rows in memory: the lines', payments' and sales' counters, and
        each sale's status (products and customers are not held in memory: their
        counters move in the database only). `sales` holds every sale the effect touches.

        A sale this effect cancels carries its cancellation row already, unsaved
        (sale_cancel sets it: sale.cancellation); one it un-cancels has it dropped here.
        The ledger refuses to cancel a sale without its row."""
        by_sale = {ls.sale.pk: ls for ls in sales}
        lines = {ln.pk: ln for ls in by_sale.values() for ln in ls.lines}
        payments = {p.pk: p for ls in by_sale.values() for p in ls.payments}
        for name, rows in (("lines", lines), ("payments", payments),
                           ("sales", {pk: ls.sale for pk, ls in by_sale.items()})):
            fields = COUNTERS[name][1]
            for pk, d in getattr(self, name).items():
                obj = rows[pk]
                for f, x in zip(fields, d, strict=True):
                    setattr(obj, f, getattr(obj, f) + x)
        for pk, c in self.cancelled.items():
            sale = by_sale[pk].sale
            if c > 0:
                cancellation_made(sale)
            else:
                CANCELLATION.set_cached_value(sale, None)
        for pk in {*self.sales, *self.cancelled}:
            sale = by_sale[pk].sale
            c = self.cancelled.get(pk, 0)
            sale.status = sale.compute_status(cancelled=(c > 0) if c else None)


def sum_effects(effects: Iterable[Effect]) -> Effect:
    """Effects added up (as `a + b + ...`, in one pass: a batch of a thousand records)."""
    tables: dict[str, Deltas] = {name: {} for name in COUNTERS}
    cancelled: dict[int, int] = {}
    for effect in effects:
        for name, total in tables.items():
            for pk, d in getattr(effect, name).items():
                _add(total, pk, d)
        for pk, c in effect.cancelled.items():
            cancelled[pk] = cancelled.get(pk, 0) + c
    return Effect(**tables, cancelled=cancelled)._merge(Effect(), +1)


def effect_of_plan(plan: RefundPlan, *, cancels: bool = False) -> Effect:
    """What a planned refund moves (`cancels`: it is a sale's cancellation)."""
    sale = plan.sale
    lines: Deltas = {}
    stock: Deltas = {}
    for pl in plan.lines:
        _add(lines, pl.line.pk, (pl.quantity, pl.amount, pl.tax_amount))
        if plan.options.restock and pl.line.product_id:
            _add(stock, pl.line.product_id, (pl.quantity,))
    payments: Deltas = {}
    for a in plan.allocations:
        _add(payments, a.payment.pk, (a.amount,))
    credit: Deltas = {}
    if plan.options.type == RefundType.BALANCE_REFUND and sale.customer_id and plan.total:
        credit[sale.customer_id] = (plan.total,)
    sale_deltas = (plan.total, plan.units, plan.processing_fee, plan.reseller_fee,
                   plan.shipping_fee)
    return Effect(
        lines=lines, payments=payments, stock=stock, store_credit=credit,
        sales={sale.pk: sale_deltas},
        cancelled={sale.pk: 1} if cancels else {},
    )._merge(Effect(), +1)  # drops the all-zero rows


def rows_of_plan(plan: RefundPlan) -> LockedSale:
    """The locked rows a plan moves (its sale, lines and payments), for Effect.apply."""
    return LockedSale(sale=plan.sale, lines=[pl.line for pl in plan.lines],
                      payments=[a.payment for a in plan.allocations])


def effect_of_refund(refund: Refund, locked: LockedSale) -> Effect:
    """What a stored refund moved, from its ledger rows (its lines and allocations, read
    through refund.lines / refund.allocations: prefetch them for many refunds)."""
    sale = locked.sale
    products = {ln.pk: ln.product_id for ln in locked.lines}
    lines: Deltas = {}
    stock: Deltas = {}
    for rl in refund.lines.all():
        _add(lines, rl.sale_line_id, (rl.quantity, rl.amount, rl.tax_amount))
        product_id = products[rl.sale_line_id]
        if refund.restock and product_id:
            _add(stock, product_id, (rl.quantity,))
    payments: Deltas = {}
    for alloc in refund.allocations.all():
        _add(payments, alloc.payment_id, (alloc.amount,))
    credit: Deltas = {}
    if refund.type == RefundType.BALANCE_REFUND and sale.customer_id and refund.total:
        credit[sale.customer_id] = (refund.total,)
    return Effect(
        lines=lines, payments=payments, stock=stock, store_credit=credit,
        sales={sale.pk: (refund.total, refund.units, refund.processing_fee,
                         refund.reseller_fee, refund.shipping_fee)},
        cancelled={sale.pk: 1} if refund.type == RefundType.CANCELLATION else {},
    )._merge(Effect(), +1)


@dataclass
class NewRows:
    """Ledger rows written with an effect: one refund, its lines, allocations, alerts
    (unsaved; saved by ledger_write, their pks set)."""

    refund: Refund
    lines: Sequence[RefundLine] = ()
    allocations: Sequence[RefundPayment] = ()
    alerts: Sequence[CustomerAlert] = ()


def _sale_values(effect: Effect, sales: Mapping[int, Sale]) -> dict[int, dict[str, Any]]:
    """Each touched sale's new status, from memory."""
    now = timezone.now()
    return {pk: {"status": sales[pk].status, "updated_at": now}
            for pk in sorted({*effect.sales, *effect.cancelled})}


def _cancellations(effect: Effect, sales: Mapping[int, Sale]) -> Cancellations:
    """The cancellation rows the effect inserts (held by the sales it cancels) and the
    sales whose rows it deletes (those it un-cancels)."""
    made = [cancellation_made(sales[pk]) for pk, c in sorted(effect.cancelled.items()) if c > 0]
    return made, sorted(pk for pk, c in effect.cancelled.items() if c < 0)


def _stock_moves(effect: Effect, refund_id: int | None) -> StockMoves:
    """How the effect's stock moves are recorded: a cancel's (or its reversal's) as
    cancel, any other as refund; with the sale's id when the effect touches one sale
    (an import's batch touches many: none), and the refund's id: the new refund's, or
    `refund_id` (the refund a reversal undoes)."""
    kind = StockMoveKind.CANCEL if effect.cancelled else StockMoveKind.REFUND
    touched = {*effect.sales, *effect.cancelled}
    return StockMoves(kind=kind, sale_id=next(iter(touched)) if len(touched) == 1 else None,
                      refund_id=refund_id)


def ledger_write(effect: Effect, sales: Mapping[int, Sale], rows: NewRows | None = None,
                 *, refund_id: int | None = None) -> None:
    """Write the effect (and the new ledger rows, if any): every counter `x = x + delta`
    under the caller's locks, each touched sale's status from `sales` (moved in memory by
    effect.apply), the cancellation rows of the sales it cancels inserted and of those it
    un-cancels deleted. Products are locked in pk order before any is updated."""
    values = _sale_values(effect, sales)
    made, undone = _cancellations(effect, sales)
    moves = _stock_moves(effect, refund_id)
    if WRITE_IN_ONE_STATEMENT and connection.vendor == "postgresql":
        write_postgres([(name, model, fields, getattr(effect, name))
                        for name, (model, fields) in COUNTERS.items()], values, rows,
                       (made, undone), moves)
        return
    if made:
        SaleCancellation.objects.bulk_create(made)
    if undone:
        SaleCancellation.objects.filter(pk__in=undone).delete()
    if rows is not None:
        rows.refund.save(force_insert=True)
        if rows.lines:
            RefundLine.objects.bulk_create(rows.lines)
        if rows.allocations:
            RefundPayment.objects.bulk_create(rows.allocations)
        if rows.alerts:
            CustomerAlert.objects.bulk_create(rows.alerts)
    for name, (model, fields) in COUNTERS.items():
        deltas: Deltas = getattr(effect, name)
        if name == "stock":
            stock_move({pk: d[0] for pk, d in deltas.items()}, +1,  # locks them first
                       kind=moves.kind, sale_id=moves.sale_id,
                       refund_id=rows.refund.pk if rows is not None else moves.refund_id)
        elif name == "sales":
            _update_orm(model, fields, deltas, values)
        elif deltas:
            _update_orm(model, fields, deltas, {})


def _update_orm(model: type[models.Model], fields: Sequence[str], deltas: Deltas,
                values: Mapping[int, Mapping[str, Any]]) -> None:
    """One UPDATE for all the rows, whatever their number."""
    ids = sorted({*deltas, *values})
    if not ids:
        return
    zero = (0,) * len(fields)
    if len(ids) == 1:
        pk = ids[0]
        d = deltas.get(pk, zero)
        model.objects.filter(pk=pk).update(  # type: ignore[attr-defined]
            **{f: F(f) + x for f, x in zip(fields, d, strict=True) if x},
            **values.get(pk, {}),
        )
        return
    updates: dict[str, Any] = {
        f: F(f) + Case(*[When(pk=pk, then=Value(deltas.get(pk, zero)[i])) for pk in ids],
                       default=Value(0))
        for i, f in enumerate(fields)
    }
    for f in sorted({f for v in values.values() for f in v}):
        out = cast(models.Field, model._meta.get_field(f))
        updates[f] = Case(*[When(pk=pk, then=Value(values[pk][f], output_field=out))
                            for pk in ids if f in values.get(pk, {})],
                          default=F(f), output_field=out)
    model.objects.filter(pk__in=ids).update(**updates)  # type: ignore[attr-defined]


__all__ = ["COUNTERS", "Effect", "NewRows", "effect_of_plan", "effect_of_refund",
           "ledger_write", "rows_of_plan"]
