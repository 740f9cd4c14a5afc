"""In-process parts of the benchmark, run by bench/__main__.py as separate processes.

    python -m bench.django_tasks prepare WORKDIR   # fixtures for the scenarios, files for wrk
    python -m bench.django_tasks queries WORKDIR   # query counts + admin server times
    python -m bench.django_tasks verify WORKDIR    # counters of the hot sales add up

Each prints `name: value unit` lines (queries, admin) or writes files into WORKDIR.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from backoffice.models import ApiKey  # noqa: E402
from refunds.services import RefundOptions, refund_create  # noqa: E402
from sales.models import Product, Sale, SaleLine  # noqa: E402
from sales.services import (  # noqa: E402
    CustomerInput,
    LineInput,
    SaleInput,
    sale_create,
)

TAX = Decimal("0.20")
FETCH_SALES = 200
HOT_SALES = 10
HOT_UNITS = 8  # per hot sale: the hot scenario runs past it, so refusals (422) are exercised
BULK_RECORDS = 1000
BULK_BATCHES = 3


def out(name: str, value, unit: str = "") -> None:
    print(f"{name}: {value} {unit}".rstrip(), flush=True)


def make_sale(products, *, lines: int, qty: int, payments: int, ext: str) -> Sale:
    picked = [products[i % len(products)] for i in range(lines)]
    data = SaleInput(
        channel="api", external_id=ext,
        customer=CustomerInput(name="Bench Customer", email="bench@example.com",
                               phone="+447700900123"),
        lines=[LineInput(product_id=p.pk, quantity=qty, tax_rate=TAX) for p in picked],
    )
    sale = sale_create(data=data)
    total = sale.total
    amounts = [total // payments] * (payments - 1)
    amounts.append(total - sum(amounts))
    from sales.services import payment_record

    for i, amount in enumerate(amounts):
        payment_record(sale_id=sale.pk, amount=amount, method="card" if i == 0 else "cash",
                       gateway="")
    return sale


def prepare(workdir: Path) -> None:
    # The load comes from an integration's key, as in production: a service user (not a
    # superuser) with the integration role, so permissions are checked as they would be.
    from backoffice.management.commands.create_api_key import ROLES, _permissions

    User = get_user_model()
    service, _ = User.objects.get_or_create(username="bench-integration",
                                            defaults={"is_staff": False})
    service.user_permissions.set(_permissions(ROLES["integration"]))
    _, key = ApiKey.objects.create_key(name="bench", user=service)
    (workdir / "api_key").write_text(key)
    products = list(Product.objects.order_by("pk")[:10])

    # Sale fetch: 5 lines, 2 payments, 2 refunds each.
    fetch_ids = []
    for i in range(FETCH_SALES):
        sale = make_sale(products, lines=5, qty=3, payments=2, ext=f"BENCH-FETCH-{i}")
        first = sale.lines.order_by("pk").values_list("pk", flat=True)[:2]
        for line_id in first:
            refund_create(sale_id=sale.pk, items={line_id: 1},
                          options=RefundOptions(online=False), source="command")
        fetch_ids.append(sale.pk)
    (workdir / "fetch.txt").write_text("".join(f"{pk} 0\n" for pk in fetch_ids))

    # Contention: 10 hot sales, one line of HOT_UNITS units each, 2 payments.
    hot = []
    for i in range(HOT_SALES):
        sale = make_sale(products, lines=1, qty=HOT_UNITS, payments=2, ext=f"BENCH-HOT-{i}")
        hot.append((sale.pk, sale.lines.get().pk))
    (workdir / "hot.txt").write_text("".join(f"{s} {ln}\n" for s, ln in hot))

    # The bulk sales (seed_demo --sales): the first line of each, split in three ranges:
    # the API refund scenario, pgbench, and the bulk import. Never the same sale twice.
    rows = list(
        SaleLine.objects.filter(sale__external_id__startswith="BULK-")
        .order_by("sale_id", "pk").distinct("sale_id").values_list("sale_id", "pk")
    )
    n = len(rows)
    bulk_n = BULK_RECORDS * BULK_BATCHES
    api_part = rows[: (n - bulk_n) // 2]
    pg_part = rows[(n - bulk_n) // 2: n - bulk_n]
    bulk_part = rows[n - bulk_n:]
    (workdir / "refund.txt").write_text("".join(f"{s} {ln}\n" for s, ln in api_part))
    (workdir / "pgbench_range").write_text(f"{pg_part[0][0]} {pg_part[-1][0]}\n")
    for b in range(BULK_BATCHES):
        part = bulk_part[b * BULK_RECORDS:(b + 1) * BULK_RECORDS]
        records = [
            {"id": f"bench-{b}-{i}", "sale_id": s, "refunded_at": "2026-11-20T10:00:00Z",
             "reason": "requested_by_customer", "restock": True,
             "line_items": [{"item_id": ln, "quantity": 1}]}
            for i, (s, ln) in enumerate(part)
        ]
        (workdir / f"bulk{b}.json").write_text(json.dumps(records))
    # The admin's sale page: a sale of 100 lines.
    big = make_sale(products, lines=100, qty=2, payments=2, ext="BENCH-ADMIN-100")
    (workdir / "admin_sale").write_text(str(big.pk))
    out("bench_fixtures", f"fetch={len(fetch_ids)} hot={len(hot)} api_sales={len(api_part)} "
        f"pgbench_sales={len(pg_part)} bulk_sales={len(bulk_part)}")


def _api(client: Client, key: str):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}", "secure": True}


def queries(workdir: Path) -> None:
    key = (workdir / "api_key").read_text().strip()
    products = list(Product.objects.order_by("pk")[:10])
    client = Client()

    def count(fn) -> tuple[int, object]:
        with CaptureQueriesContext(connection) as ctx:
            resp = fn()
        return len(ctx.captured_queries), resp

    # Warm up: the key's last_used_at is written at most once a minute; not counted here.
    client.get("/api/v2/sales/?page_size=1", **_api(client, key))
    # A refund of 1 line and of 50 lines: the service alone, and the whole API request.
    for n_lines in (1, 50):
        sale = make_sale(products, lines=n_lines, qty=2, payments=2, ext=f"BENCH-S-{n_lines}")
        items = dict.fromkeys(sale.lines.values_list("pk", flat=True), 1)
        n, _ = count(lambda s=sale, i=items: refund_create(
            sale_id=s.pk, items=i, options=RefundOptions(online=False, alert_customer=True)))
        out(f"queries_refund_service_{n_lines}_lines", n, "queries")
    for n_lines in (1, 50):
        sale = make_sale(products, lines=n_lines, qty=2, payments=2, ext=f"BENCH-Q-{n_lines}")
        items = [{"item_id": pk, "quantity": 1}
                 for pk in sale.lines.order_by("pk").values_list("pk", flat=True)]
        body = json.dumps({"items": items, "online": False, "alert_customer": True})
        n, resp = count(lambda s=sale, b=body: client.post(
            f"/api/v2/sales/{s.pk}/refunds/", b, content_type="application/json",
            **_api(client, key)))
        assert resp.status_code == 201, resp.content[:300]
        out(f"queries_refund_{n_lines}_lines", n, "queries")

    fetch_id = int((workdir / "fetch.txt").read_text().split()[0])
    client.get(f"/api/v2/sales/{fetch_id}/", **_api(client, key))  # warm caches
    n, resp = count(lambda: client.get(f"/api/v2/sales/{fetch_id}/", **_api(client, key)))
    assert resp.status_code == 200, resp.content[:300]
    out("queries_sale_fetch", n, "queries")
    n, resp = count(lambda: client.get("/api/v2/sales/?page_size=100", **_api(client, key)))
    assert resp.status_code == 200 and len(resp.json()["data"]) == 100, resp.content[:300]
    out("queries_sale_list_100", n, "queries")

    # Bulk import: queries per batch of 10 and of 100 records (must not grow with it).
    records = json.loads((workdir / "bulk2.json").read_text())
    for size, chunk in ((10, records[:10]), (100, records[10:110])):
        n, resp = count(lambda c=chunk: client.post(
            "/api/v2/refunds/json", json.dumps(c), content_type="application/json",
            **_api(client, key)))
        assert resp.status_code in (200, 201), resp.content[:300]
        out(f"queries_bulk_import_{size}_records", n, "queries")
    (workdir / "bulk2.json").write_text(json.dumps(records[110:]))

    admin_pages(workdir)


def admin_pages(workdir: Path) -> None:
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    big = int((workdir / "admin_sale").read_text())
    total = Sale.objects.count()
    out("admin_sales_in_db", total, "sales")
    for name, url in (("admin_changelist", "/admin/sales/sale/"),
                      ("admin_sale_page_100_lines", f"/admin/sales/sale/{big}/change/")):
        counts, times = [], []
        for i in range(22):
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as ctx:
                resp = client.get(url, secure=True)
                if hasattr(resp, "render") and not resp.is_rendered:
                    resp.render()
            elapsed = time.perf_counter() - started
            assert resp.status_code == 200, (url, resp.status_code)
            if i >= 2:  # the first two warm the caches (templates, content types)
                times.append(elapsed * 1000)
                counts.append(len(ctx.captured_queries))
        out(f"{name}_median", f"{statistics.median(times):.1f}", "ms")
        out(f"{name}_queries", f"{min(counts)}..{max(counts)}", "queries")


def verify(workdir: Path) -> None:
    """After the hot scenario: nothing was given back twice, every counter adds up."""
    hot = [int(line.split()[0]) for line in (workdir / "hot.txt").read_text().splitlines()]
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT
              count(*) FILTER (WHERE l.refunded_quantity > l.quantity
                               OR l.refunded_quantity <> coalesce(rl.q, 0)
                               OR l.refunded_amount <> coalesce(rl.a, 0)),
              sum(l.refunded_quantity), sum(l.quantity)
            FROM sales_saleline l
            LEFT JOIN (SELECT sale_line_id, sum(quantity) q, sum(amount) a
                       FROM refunds_refundline GROUP BY sale_line_id) rl
              ON rl.sale_line_id = l.id
            WHERE l.sale_id = ANY(%s)
            """, [hot])
        bad_lines, refunded, units = cur.fetchone()
        cur.execute(
            """
            SELECT count(*) FILTER (WHERE p.refunded_amount > p.amount
                                    OR p.refunded_amount <> coalesce(a.s, 0))
            FROM sales_payment p
            LEFT JOIN (SELECT payment_id, sum(amount) s FROM refunds_refundpayment
                       GROUP BY payment_id) a ON a.payment_id = p.id
            WHERE p.sale_id = ANY(%s)
            """, [hot])
        bad_payments = cur.fetchone()[0]
        cur.execute(
            """
            SELECT count(*) FILTER (WHERE s.amount_refunded > s.amount_paid
                                    OR s.amount_refunded <> coalesce(r.t, 0)
                                    OR s.refunded_units <> coalesce(r.u, 0))
            FROM sales_sale s
            LEFT JOIN (SELECT sale_id, sum(total) t, sum(units) u FROM refunds_refund
                       GROUP BY sale_id) r ON r.sale_id = s.id
            WHERE s.id = ANY(%s)
            """, [hot])
        bad_sales = cur.fetchone()[0]
    out("hot_units_refunded", f"{refunded}/{units}", "units")
    out("hot_over_refund_rows", bad_lines + bad_payments + bad_sales, "rows")


if __name__ == "__main__":
    command, workdir = sys.argv[1], Path(sys.argv[2])
    {"prepare": prepare, "queries": queries, "verify": verify}[command](workdir)
