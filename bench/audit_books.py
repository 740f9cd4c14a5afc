"""Time `manage.py audit_books` at a million sales: `python -m bench.audit_books [--sales N]`.

Creates its own PostgreSQL database (bench_audit), seeds it with `seed_demo --sales N`
(the demo's sales with their refunds, cancels and imports through the services, then bulk
paid sales by COPY), refunds every tenth bulk sale in full in SQL (a ledger at scale),
runs audit_books over every sale, and prints `name: value unit` lines: the seeding time,
the audit's wall time and its differences (must be 0). bench/run times the same command
on its own database after all its scenarios.
"""

from __future__ import annotations

import sys
import time

from .__main__ import Bench, audit_books, figure, parse_args, say

# A ledger at scale: every tenth bulk sale (paid by one card, no fees) refunded in full,
# with its refund, refund lines and allocation, and its counters moved as the services
# would. audit_books then checks these statements too (0 differences expected).
_CHOSEN = "SELECT id FROM sales_sale WHERE external_id LIKE 'BULK-%' AND id % 10 = 0"
REFUND_A_TENTH = [
    f"""INSERT INTO refunds_refund (sale_id, type, status, currency, restock,
        refund_processing_fee, refund_reseller_fee, refund_shipping, alert_customer, online,
        lines_amount, tax_amount, processing_fee, reseller_fee, shipping_fee, total, units,
        reason, note, batch_id, import_source, source, created_at, settled_at,
        failure_reason)
        SELECT id, 'refund', 'succeeded', currency, false, false, false, false, false, false,
        subtotal, tax_total, 0, 0, 0, total, units, 'requested_by_customer', '',
        'bench-audit', '', 'command', created_at, created_at, ''
        FROM sales_sale WHERE id IN ({_CHOSEN})""",
    """INSERT INTO refunds_refundline (refund_id, sale_line_id, quantity, amount, tax_amount)
        SELECT r.id, l.id, l.quantity, l.net_amount, l.tax_amount
        FROM refunds_refund r JOIN sales_saleline l ON l.sale_id = r.sale_id
        WHERE r.batch_id = 'bench-audit'""",
    """INSERT INTO refunds_refundpayment (refund_id, payment_id, amount, online, status,
        gateway_reference, attempts, last_error, gateway_key, created_at, settled_at)
        SELECT r.id, p.id, p.amount, false, 'succeeded', '', 0, '', gen_random_uuid(),
        r.created_at, r.created_at
        FROM refunds_refund r JOIN sales_payment p ON p.sale_id = r.sale_id
        WHERE r.batch_id = 'bench-audit'""",
    f"""UPDATE sales_saleline SET refunded_quantity = quantity, refunded_amount = net_amount,
        refunded_tax = tax_amount WHERE sale_id IN ({_CHOSEN})""",
    f"UPDATE sales_payment SET refunded_amount = amount WHERE sale_id IN ({_CHOSEN})",
    f"""UPDATE sales_sale SET amount_refunded = amount_paid, refunded_units = units,
        status = 'refunded' WHERE id IN ({_CHOSEN})""",
]


def main(argv: list[str]) -> int:
    sales = 1_000_000
    if argv[:1] == ["--sales"]:
        sales, argv = int(argv[1]), argv[2:]
    bench = Bench(parse_args(["--db", "bench_audit", *argv]))
    try:
        bench.create_db()
        say("migrate")
        bench.manage("migrate", "--noinput", "-v0")
        say(f"seed_demo --sales {sales}")
        t0 = time.perf_counter()
        bench.manage("seed_demo", "--sales", str(sales), "--batch", "20000")
        figure(f"seed_demo_{sales}", time.perf_counter() - t0, "s")
        say("refund every tenth bulk sale in full, in SQL")
        t0 = time.perf_counter()
        for statement in REFUND_A_TENTH:
            bench.sql(statement)
        figure("bulk_refunds_s", time.perf_counter() - t0, "s")
        bench.sql("VACUUM ANALYZE")
        audit_books(bench, sales)
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
