"""Time `manage.py audit_books` at a million sales: `python -m bench.audit_books [--sales N]`.

Creates its own PostgreSQL database (bench_audit), seeds it with `seed_demo --sales N`
(the demo's sales with their refunds, cancels and imports through the services, then bulk
paid sales by COPY), runs audit_books over every sale, and prints `name: value unit`
lines: the seeding time, the audit's wall time, its differences (must be 0) and its exit
code. bench/run times the same command on its own database after all its scenarios.
"""

from __future__ import annotations

import sys
import time

from .__main__ import Bench, audit_books, figure, parse_args, say


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
        bench.sql("VACUUM ANALYZE")
        audit_books(bench, sales)
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
