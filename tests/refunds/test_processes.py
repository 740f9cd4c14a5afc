"""The embedded default (a SQLite file) with several processes: concurrent refund_sale
commands on the last units of a line queue on SQLite's write lock (IMMEDIATE
transactions), so exactly as many succeed as there are units.

It makes its own SQLite database in a temporary directory and runs `manage.py` in child
processes, so it runs in the SQLite and the PostgreSQL runs of the suite alike.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from django.conf import settings

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
UNITS = 3
PROCESSES = 6

MAKE_SALE = f"""
from tests.factories import SaleFactory
sale = SaleFactory(lines=[({UNITS}, 1200)])
print(sale.number, sale.lines.get().pk)
"""


def _embedded_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "CI"}}
    env.update(SQLITE_PATH=str(db), TESTING="1", DJANGO_SETTINGS_MODULE="backoffice.settings")
    return env


def _command(*args: str) -> list[str]:
    # System checks are other tests' business: skipping them keeps each process quick
    # (`shell` runs none, and has no such flag).
    skip = [] if args[0] == "shell" else ["--skip-checks"]
    return [sys.executable, MANAGE, *args, *skip]


def _manage(env, *args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=settings.BASE_DIR)


def test_parallel_refund_commands_on_a_sqlite_file_never_refund_more_than_was_bought(
    tmp_path,
):
    db = tmp_path / "db.sqlite3"
    env = _embedded_env(db)
    migrated = _manage(env, "migrate", "--noinput", timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    made = _manage(env, "shell", "-c", MAKE_SALE)
    assert made.returncode == 0, made.stderr
    number, line_id = made.stdout.split()[-2:]

    procs = [
        subprocess.Popen(
            _command("refund_sale", number, "--item", f"{line_id}:1", "--commit"),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=settings.BASE_DIR,
        )
        for _ in range(PROCESSES)
    ]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        outcomes.append((proc.returncode, out, err))

    ok = [o for o in outcomes if o[0] == 0]
    refused = [o for o in outcomes if o[0] != 0]
    assert len(ok) == UNITS, outcomes
    assert all("refunded: refund" in out for _, out, _ in ok), ok
    assert len(refused) == PROCESSES - UNITS, outcomes
    assert all("refund_quantity_exceeded" in err for _, _, err in refused), refused

    with sqlite3.connect(db) as con:
        quantity, refunded_qty, net, refunded_amount = con.execute(
            "SELECT quantity, refunded_quantity, net_amount, refunded_amount "
            "FROM sales_saleline WHERE id = ?", [line_id]).fetchone()
        n_refunds, refunds_total, refund_units = con.execute(
            "SELECT COUNT(*), SUM(total), SUM(units) FROM refunds_refund").fetchone()
        line_refunded = con.execute(
            "SELECT SUM(quantity), SUM(amount) FROM refunds_refundline").fetchone()
        payment_refunded, allocated = con.execute(
            "SELECT (SELECT SUM(refunded_amount) FROM sales_payment), "
            "(SELECT SUM(amount) FROM refunds_refundpayment)").fetchone()
        status, sale_refunded, sale_units = con.execute(
            "SELECT status, amount_refunded, refunded_units FROM sales_sale WHERE number = ?",
            [number]).fetchone()
    assert (quantity, refunded_qty) == (UNITS, UNITS)
    assert n_refunds == UNITS and refund_units == UNITS
    assert line_refunded == (UNITS, net) and refunded_amount == net
    assert payment_refunded == allocated == refunds_total == sale_refunded
    assert sale_units == UNITS and status == "refunded"
    # And the books of that database balance, counter by counter (manage.py audit_books).
    audited = _manage(env, "audit_books")
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert audited.stdout.splitlines() == ["differences: 0"]
