"""A refund's writes in one statement, on PostgreSQL.

A refund makes up to ten writes (the refund, its lines, its allocations, its alerts; the
line, product, payment, customer and sale counters: its ledger.Effect; a cancel also
inserts the sale's SaleCancellation row, a cancellation reversed deletes it; a restock
also inserts a StockMove per product). Through the
ORM that is ten statements, each compiled in Python and sent on its own round trip: most of a refund
request's CPU time. Here they are one statement of data-modifying CTEs, the rows passed
as arrays (`unnest`), so its cost does not grow with the number of lines either.

Nothing of the rules moves here: the caller (ledger.ledger_write) holds the sale's lock, the
plan was computed from the locked rows, every counter is still `x = x + delta` in the
database, and every CHECK constraint still refuses an over-refund (IntegrityError, as
with the ORM). The rows are the ORM's own: each instance's column values come from its
fields (`pre_save`, `get_db_prep_save`), so defaults and `auto_now_add` behave the same.
tests/refunds/test_write_paths.py writes the same refunds both ways and compares every
row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django.db import connection, models
from django.utils import timezone

from sales.models import SaleCancellation, StockMove

from ..models import CustomerAlert, Refund, RefundLine, RefundPayment

if TYPE_CHECKING:
    from .ledger import NewRows

# (name, model, counter columns, {pk: deltas}) for one table of an effect.
Counters = tuple[str, type[models.Model], Sequence[str], Mapping[int, Sequence[int]]]
# The sales' cancellations an effect makes (unsaved rows) and undoes (their sales' ids).
Cancellations = tuple[Sequence[SaleCancellation], Sequence[int]]


@dataclass(frozen=True)
class StockMoves:
    """How an effect's stock deltas are recorded as StockMove rows (one per product):
    their kind and sale; the refund is the one the statement inserts, if any."""

    kind: str
    sale_id: int | None = None
    refund_id: int | None = None  # when the statement inserts no refund


qn = connection.ops.quote_name


def _field(model: type[models.Model], name: str) -> models.Field:
    return cast(models.Field, model._meta.get_field(name))


def _columns(model: type[models.Model], skip: set[str]) -> list[models.Field]:
    """The columns an INSERT gives: all but a generated primary key (a primary key that
    is a foreign key, SaleCancellation's sale, is given)."""
    return [f for f in model._meta.concrete_fields
            if not getattr(f, "db_returning", False) and f.attname not in skip]


def _db_values(obj: models.Model, fields: list[models.Field]) -> list[Any]:
    return [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]


def _array_type(f: models.Field) -> str:
    db_type = f.db_type(connection) or "text"
    return f"{db_type}[]"


@dataclass
class Statement:
    ctes: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def insert_rows(self, name: str, model: type[models.Model], objs: Sequence[models.Model],
                    *, refund_fk: str | None) -> None:
        """INSERT the unsaved objs; `refund_fk` (an attname) takes the new refund's id."""
        fields = _columns(model, {refund_fk} if refund_fk else set())
        columns = [qn(f.column) for f in fields]
        rows = [_db_values(o, fields) for o in objs]
        arrays = []
        for i, f in enumerate(fields):
            arrays.append(f"%s::{_array_type(f)}")
            self.params.append([row[i] for row in rows])
        names = [f"c{i}" for i in range(len(fields))]
        select = ", ".join(f"d.{n}" for n in names)
        if refund_fk:
            columns.insert(0, qn(_field(model, refund_fk.removesuffix("_id")).column))
            select = f"r.id, {select}"
            source = f"r, unnest({', '.join(arrays)}) WITH ORDINALITY AS d ({', '.join(names)}, n)"
        else:
            source = f"unnest({', '.join(arrays)}) WITH ORDINALITY AS d ({', '.join(names)}, n)"
        pk = qn(cast(models.Field, model._meta.pk).column)
        self.ctes.append(
            f"{name} AS (INSERT INTO {qn(model._meta.db_table)} ({', '.join(columns)}) "
            f"SELECT {select} FROM {source} ORDER BY d.n RETURNING {pk})"
        )

    def delete_rows(self, name: str, model: type[models.Model], ids: Sequence[int]) -> None:
        """DELETE the rows of these primary keys."""
        if not ids:
            return
        pk = qn(cast(models.Field, model._meta.pk).column)
        self.ctes.append(f"{name} AS (DELETE FROM {qn(model._meta.db_table)} "
                         f"WHERE {pk} = ANY(%s::bigint[]) RETURNING {pk})")
        self.params.append(sorted(ids))

    def add_to_counters(self, name: str, model: type[models.Model],
                        deltas: Mapping[int, Sequence[int]], fields: Sequence[str], *,
                        values: Mapping[int, Mapping[str, Any]] | None = None,
                        lock_first: bool = False) -> None:
        """`f = f + delta` for each row and field (and `values`' columns set), one UPDATE
        joined to arrays."""
        values = values or {}
        ids = sorted({*deltas, *values})
        if not ids:
            return
        table = qn(model._meta.db_table)
        zero = (0,) * len(fields)
        set_fields = [_field(model, f) for f in sorted({f for v in values.values() for f in v})]
        names = ["id", *(f"c{i}" for i in range(len(fields))),
                 *(f"v{i}" for i in range(len(set_fields)))]
        arrays = ["%s::bigint[]"] * (1 + len(fields)) + [
            f"%s::{_array_type(f)}" for f in set_fields]
        source = f"unnest({', '.join(arrays)}) AS d ({', '.join(names)})"
        if lock_first:
            # Rows shared between sales (products) are locked in pk order first, as every
            # writer does, so two refunds can never deadlock on them.
            self.ctes.append(
                f"{name}_lock AS (SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) "
                "ORDER BY id FOR UPDATE)"
            )
            self.params.append(ids)
            source = f"{source} JOIN {name}_lock l ON l.id = d.id"
        sets = [f"{qn(f)} = t.{qn(f)} + d.c{i}" for i, f in enumerate(fields)]
        sets += [f"{qn(f.column)} = d.v{i}" for i, f in enumerate(set_fields)]
        self.ctes.append(
            f"{name} AS (UPDATE {table} AS t SET {', '.join(sets)} FROM {source} "
            "WHERE t.id = d.id RETURNING 1)"
        )
        self.params.append(ids)
        for i in range(len(fields)):
            self.params.append([deltas.get(pk, zero)[i] for pk in ids])
        for f in set_fields:
            self.params.append([f.get_db_prep_save(values[pk][f.attname], connection)
                                for pk in ids])

    def insert_moves(self, deltas: Mapping[int, Sequence[int]], moves: StockMoves, *,
                     with_refund: bool) -> None:
        """INSERT a StockMove per product of `deltas`, after the products' lock (the
        `stock_lock` CTE of add_to_counters), the refund's id from the `r` CTE."""
        ids = sorted(deltas)
        t = qn(StockMove._meta.db_table)
        columns = ", ".join(qn(_field(StockMove, f).column) for f in
                            ("product", "delta", "kind", "sale_id", "refund_id", "created_at"))
        refund = "(SELECT id FROM r)" if with_refund else "%s::bigint"
        now = timezone.now()
        self.ctes.append(
            f"stock_moves AS (INSERT INTO {t} ({columns}) "
            f"SELECT d.id, d.delta, %s, %s::bigint, {refund}, %s "
            "FROM unnest(%s::bigint[], %s::integer[]) WITH ORDINALITY AS d (id, delta, n) "
            "JOIN stock_lock l ON l.id = d.id ORDER BY d.n RETURNING 1)"
        )
        self.params += [moves.kind, moves.sale_id, *([] if with_refund else [moves.refund_id]),
                        now, ids, [deltas[pk][0] for pk in ids]]


def write_postgres(counters: Sequence[Counters], sale_values: Mapping[int, Mapping[str, Any]],
                   rows: NewRows | None, cancellations: Cancellations = ((), ()),
                   moves: StockMoves | None = None) -> None:
    """One round trip: the new rows (if any; their pks are set on them), the sales'
    cancellations the effect makes and undoes (rows inserted, rows deleted) and every
    counter of an effect, in the order given (ledger.COUNTERS'; products locked first,
    pk order), with a StockMove row per product whose stock moves (`moves`)."""
    st = Statement()
    made, undone = cancellations
    if made:
        st.insert_rows("cancel_made", SaleCancellation, made, refund_fk=None)
    st.delete_rows("cancel_undone", SaleCancellation, undone)
    if rows is not None:
        st.insert_rows("r", Refund, [rows.refund], refund_fk=None)
        st.insert_rows("rl", RefundLine, rows.lines, refund_fk="refund_id")
        st.insert_rows("rp", RefundPayment, rows.allocations, refund_fk="refund_id")
        st.insert_rows("ca", CustomerAlert, rows.alerts, refund_fk="refund_id")
    for name, model, fields, deltas in counters:
        st.add_to_counters(name, model, deltas, fields,
                           values=sale_values if name == "sales" else None,
                           lock_first=name == "stock")
        if name == "stock" and deltas and moves is not None:
            st.insert_moves(deltas, moves, with_refund=rows is not None)
    if not st.ctes:
        return
    # The refund row first (it is referenced), then the rest; every data-modifying CTE
    # runs exactly once whether or not it is referenced.
    select = ("SELECT (SELECT id FROM r), ARRAY(SELECT id FROM rl ORDER BY id), "
              "ARRAY(SELECT id FROM rp ORDER BY id), ARRAY(SELECT id FROM ca ORDER BY id)"
              if rows is not None else "SELECT 1")
    with connection.cursor() as cursor:
        cursor.execute("WITH " + ", ".join(st.ctes) + " " + select, st.params)
        written = cursor.fetchone()
    for made_row in made:
        made_row._state.adding = False
    if rows is None:
        return
    refund_id, *ids = written
    rows.refund.pk = refund_id
    rows.refund._state.adding = False
    for objs, new_ids in zip((rows.lines, rows.allocations, rows.alerts), ids, strict=True):
        for obj, pk in zip(objs, new_ids, strict=True):
            obj.pk = pk
            setattr(obj, "refund_id", refund_id)  # noqa: B010 - rows of three models
            obj._state.adding = False
