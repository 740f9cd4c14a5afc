"""Time refund_create in-process on PostgreSQL: median CPU-ms per call, and queries.

    DATABASE_URL=postgres://... .venv/bin/python -m bench.ledger_refund [calls]

Makes `calls` paid sales (three lines of one product, a cash payment: no settlement),
then refunds one unit of each, timing CPU (time.process_time) per call; then counts the
queries of a bulk import of 10 and of 100 records (each on its own sale), and of the
same batches sent again with other quantities (a replace by difference). Writes to the
database it is pointed at: use a scratch one.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
os.environ.setdefault("TESTING", "1")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from refunds.services import RefundOptions, refund_create, refunds_bulk_import  # noqa: E402
from sales.models import Product  # noqa: E402
from sales.services import (  # noqa: E402
    LineInput,
    SaleInput,
    payment_record,
    product_save,
    sale_create,
)


def _paid_sales(product: Product, count: int) -> list[tuple[int, int]]:
    """(sale id, first line id) of `count` new paid sales."""
    sales = []
    for _ in range(count):
        sale = sale_create(data=SaleInput(lines=[
            LineInput(quantity=3, unit_price=1200 + i, product_id=product.pk,
                      description=f"Item {i}") for i in range(3)
        ], kind="receipt"))
        payment_record(sale_id=sale.pk, amount=sale.total, method="cash")
        sales.append((sale.pk, sale.lines.order_by("pk").values_list("pk", flat=True)[0]))
    return sales


def _bulk_queries(product: Product, count: int) -> tuple[int, int]:
    """Queries of a bulk import of `count` records, then of the same ids replaced."""
    sales = _paid_sales(product, count)
    source = f"bench-{time.time_ns()}"
    out = []
    for quantity in (2, 1):
        records = [{"id": f"r{i}", "sale_id": sale_id,
                    "line_items": [{"item_id": line_id, "quantity": quantity}]}
                   for i, (sale_id, line_id) in enumerate(sales)]
        with CaptureQueriesContext(connection) as ctx:
            refunds_bulk_import(records=records, import_source=source)
        out.append(len(ctx.captured_queries))
    return out[0], out[1]


def main(calls: int) -> None:
    call_command("migrate", verbosity=0)
    product = product_save(Product(sku=f"BENCH-{time.time_ns()}", name="bench",
                                   price=1200, stock=10**6))
    sales = _paid_sales(product, calls)
    opts = RefundOptions(alert_customer=False)
    cpu = []
    for sale_id, line_id in sales[:20]:  # warm up (prepared statements, caches)
        refund_create(sale_id=sale_id, items={line_id: 1}, options=opts)
    for sale_id, line_id in sales[20:]:
        start = time.process_time()
        refund_create(sale_id=sale_id, items={line_id: 1}, options=opts)
        cpu.append((time.process_time() - start) * 1000)
    sale_id, line_id = sales[-1]
    with CaptureQueriesContext(connection) as ctx:
        refund_create(sale_id=sale_id, items={line_id: 1}, options=opts)
    print(f"vendor={connection.vendor} calls={len(cpu)} "
          f"median_cpu_ms={statistics.median(cpu):.3f} "
          f"p90_cpu_ms={statistics.quantiles(cpu, n=10)[-1]:.3f} "
          f"queries_per_refund={len(ctx.captured_queries)}")
    for count in (10, 100):
        created, replaced = _bulk_queries(product, count)
        print(f"bulk_import_{count}_records: created={created} queries, "
              f"replaced={replaced} queries")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 520)
