"""A refund's writes in one statement, on PostgreSQL.

`refund_write` makes up to ten writes (the refund, its lines, its allocations, its
alerts; the line, product, payment, customer and sale counters). Through the ORM that is
ten statements, each compiled in Python and sent on its own round trip: most of a refund
request's CPU time. Here they are one statement of data-modifying CTEs, the rows passed
as arrays (`unnest`), so its cost does not grow with the number of lines either.

Nothing of the rules moves here: the caller (refund_write) holds the sale's lock, the
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
from typing import Any, cast

from django.db import connection, models

from sales.models import Customer, Payment, Product, Sale, SaleLine

from ..models import CustomerAlert, Refund, RefundLine, RefundPayment

qn = connection.ops.quote_name


def _field(model: type[models.Model], name: str) -> models.Field:
    return cast(models.Field, model._meta.get_field(name))


def _columns(model: type[models.Model], skip: set[str]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields
            if not f.primary_key and f.attname not in skip]


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
        self.ctes.append(
            f"{name} AS (INSERT INTO {qn(model._meta.db_table)} ({', '.join(columns)}) "
            f"SELECT {select} FROM {source} ORDER BY d.n RETURNING id)"
        )

    def add_to_counters(self, name: str, model: type[models.Model],
                        deltas: Mapping[int, Sequence[int]], fields: Sequence[str], *,
                        lock_first: bool = False) -> None:
        """`f = f + delta` for each row and field, one UPDATE joined to arrays."""
        if not deltas:
            return
        table = qn(model._meta.db_table)
        ids = sorted(deltas)
        names = ["id", *(f"c{i}" for i in range(len(fields)))]
        source = f"unnest({', '.join(['%s::bigint[]'] * len(names))}) AS d ({', '.join(names)})"
        if lock_first:
            # Rows shared between sales (products) are locked in pk order first, as every
            # writer does, so two refunds can never deadlock on them.
            self.ctes.append(
                f"{name}_lock AS (SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) "
                "ORDER BY id FOR UPDATE)"
            )
            self.params.append(ids)
            source = f"{source} JOIN {name}_lock l ON l.id = d.id"
        sets = ", ".join(f"{qn(f)} = t.{qn(f)} + d.c{i}" for i, f in enumerate(fields))
        self.ctes.append(
            f"{name} AS (UPDATE {table} AS t SET {sets} FROM {source} WHERE t.id = d.id "
            "RETURNING 1)"
        )
        self.params.append(ids)
        for i in range(len(fields)):
            self.params.append([deltas[pk][i] for pk in ids])

    def update_one(self, name: str, model: type[models.Model], pk: int,
                   deltas: Mapping[str, int], values: Mapping[str, Any]) -> None:
        sets = [f"{qn(f)} = {qn(f)} + %s" for f in deltas]
        sets += [f"{qn(_field(model, f).column)} = %s" for f in values]
        self.params += [*deltas.values()]
        self.params += [_field(model, f).get_db_prep_save(v, connection)
                        for f, v in values.items()]
        self.params.append(pk)
        self.ctes.append(
            f"{name} AS (UPDATE {qn(model._meta.db_table)} SET {', '.join(sets)} "
            "WHERE id = %s RETURNING 1)"
        )


@dataclass
class WrittenIds:
    refund: int
    lines: list[int]
    allocations: list[int]
    alerts: list[int]


def write_refund_postgres(
    *,
    refund: Refund,
    lines: Sequence[RefundLine],
    allocations: Sequence[RefundPayment],
    alerts: Sequence[CustomerAlert],
    line_deltas: Mapping[int, tuple[int, int, int]],
    stock_deltas: Mapping[int, int],
    payment_deltas: Mapping[int, int],
    balance_credit: tuple[int, int] | None,
    sale: Sale,
    sale_deltas: Mapping[str, int],
    sale_values: Mapping[str, Any],
) -> WrittenIds:
    """One round trip; returns the ids of the rows it inserted, in the order given."""
    st = Statement()
    st.insert_rows("r", Refund, [refund], refund_fk=None)
    st.insert_rows("rl", RefundLine, lines, refund_fk="refund_id")
    st.insert_rows("rp", RefundPayment, allocations, refund_fk="refund_id")
    st.insert_rows("ca", CustomerAlert, alerts, refund_fk="refund_id")
    st.add_to_counters("lc", SaleLine, line_deltas,
                       ("refunded_quantity", "refunded_amount", "refunded_tax"))
    st.add_to_counters("sc", Product, {pk: (d,) for pk, d in stock_deltas.items()},
                       ("stock",), lock_first=True)
    st.add_to_counters("pc", Payment, {pk: (d,) for pk, d in payment_deltas.items()},
                       ("refunded_amount",))
    if balance_credit is not None:
        customer_id, amount = balance_credit
        st.update_one("cb", Customer, customer_id, {"store_balance": amount}, {})
    st.update_one("su", Sale, sale.pk, sale_deltas, sale_values)
    # The refund row first (it is referenced), then the rest; every data-modifying CTE
    # runs exactly once whether or not it is referenced.
    sql = (
        "WITH " + ", ".join(st.ctes) + " SELECT (SELECT id FROM r), "
        "ARRAY(SELECT id FROM rl ORDER BY id), ARRAY(SELECT id FROM rp ORDER BY id), "
        "ARRAY(SELECT id FROM ca ORDER BY id)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, st.params)
        refund_id, line_ids, allocation_ids, alert_ids = cursor.fetchone()
    return WrittenIds(refund_id, list(line_ids), list(allocation_ids), list(alert_ids))
