"""Bulk refund records: validate, upsert (all or nothing, replace, withdraw), status."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from refunds.models import Refund, RefundImport
from sales.models import Payment, Sale, SaleLine
from tests.books import assert_books_balance
from tests.factories import ProductFactory, SaleFactory

from .conftest import assert_error, assert_ok

pytestmark = pytest.mark.django_db


def record(rid, sale, qty=1, line=None, **extra):
    line = line or sale.lines.first()
    return {"id": rid, "sale_id": sale.pk, "refunded_at": "2026-11-20T10:00:00Z",
            "reason": "requested_by_customer", "restock": False,
            "line_items": [{"item_id": line.pk, "quantity": qty}], **extra}


def test_validate_answers_valid_and_writes_nothing(api, paid_sale):
    data = assert_ok(api.post("/api/v2/refunds/validate", [record("m-1", paid_sale)],
                              format="json"))
    assert data["result"] == "VALID" and data["count"] == 1
    assert not Refund.objects.exists() and not RefundImport.objects.exists()
    paid_sale.refresh_from_db()
    assert paid_sale.amount_refunded == 0


def test_validate_reports_errors_per_record_and_field(api, paid_sale):
    records = [
        record("m-1", paid_sale),
        {"id": "m-2", "sale_id": paid_sale.pk, "line_items": [{"item_id": "x", "quantity": 0}]},
        record("m-3", paid_sale, qty=3),  # 1 taken by m-1: only 2 left
        {"sale_id": 999999, "line_items": []},
        record("m-1", paid_sale),
    ]
    err = assert_error(api.post("/api/v2/refunds/validate", records, format="json"), 400,
                       "invalid_records")
    assert "[1].line_items[0].item_id" in err["errors"]
    assert "[1].line_items[0].quantity" in err["errors"]
    assert err["errors"]["[2].line_items[0].quantity"] == ["only 2 left to refund"]
    assert "[3].id" in err["errors"] and "[4].id" in err["errors"]
    by_index = {r["index"]: r for r in err["records"]}
    assert by_index[2]["id"] == "m-3"
    assert by_index[2]["errors"] == {"line_items[0].quantity": ["only 2 left to refund"]}
    assert set(by_index) == {1, 2, 3, 4}


def test_unknown_sale_and_line(api, paid_sale):
    records = [{"id": "a", "order_id": "NOPE", "line_items": []},
               record("b", paid_sale, line=SaleFactory().lines.first())]
    err = assert_error(api.post("/api/v2/refunds/json", records, format="json"), 400,
                       "invalid_records")
    assert "[0].order_id" in err["errors"] and "[1].line_items[0].item_id" in err["errors"]
    assert RefundImport.objects.get().outcome == "failure"


def test_more_than_1000_records_is_413(api, paid_sale):
    records = [record(f"r-{i}", paid_sale) for i in range(1001)]
    assert_error(api.post("/api/v2/refunds/validate", records, format="json"), 413,
                 "batch_too_large")
    assert_error(api.post("/api/v2/refunds/json", records, format="json"), 413,
                 "batch_too_large")


def test_not_an_array_is_400(api):
    assert_error(api.post("/api/v2/refunds/json", {"id": "x"}, format="json"), 400,
                 "invalid_records")


def test_all_or_nothing(api, paid_sale):
    records = [record("ok-1", paid_sale), record("bad", paid_sale, qty=99)]
    assert_error(api.post("/api/v2/refunds/json", records, format="json"), 400,
                 "invalid_records")
    assert not Refund.objects.exists()
    paid_sale.refresh_from_db()
    assert paid_sale.amount_refunded == 0 and paid_sale.status == "paid"
    assert_books_balance()


def test_import_of_1000_records_then_a_resubmission_that_changes_and_withdraws(
    api, django_assert_max_num_queries
):
    product = ProductFactory(stock=0)
    sales = [SaleFactory(lines=[(4, 1000), (2, 250)], product=product, with_customer=False,
                         shipping_fee=100) for _ in range(250)]
    records = []
    for s in sales:
        first, second = list(s.lines.all())
        records += [
            record(f"{s.pk}-a", s, qty=1, line=first, restock=True),
            record(f"{s.pk}-b", s, qty=1, line=first),
            record(f"{s.pk}-c", s, qty=1, line=second),
            {**record(f"{s.pk}-d", s, qty=1, line=second), "sale_id": None,
             "order_id": s.number},
        ]
    assert len(records) == 1000
    # A fixed number of statements (SQLite splits a bulk insert into ~30-row batches).
    with django_assert_max_num_queries(25 if connection.vendor == "postgresql" else 80):
        data = assert_ok(api.post("/api/v2/refunds/json", records, format="json"), 201,
                         "refunds imported")
    assert data["count"] == 1000 and data["created"] == 1000
    assert Refund.objects.filter(source="import").count() == 1000
    s0 = Sale.objects.get(pk=sales[0].pk)
    lines = list(s0.lines.all())
    assert [ln.refunded_quantity for ln in lines] == [2, 2]
    assert s0.refunded_units == 4 and s0.status == "partially_refunded"
    payment = Payment.objects.get(sale=s0)
    assert payment.refunded_amount == s0.amount_refunded
    product.refresh_from_db()
    assert product.stock == -6 * 250 + 250  # sold 6 per sale, 1 per sale restocked

    # Resubmit: for each sale, -a now takes 3 units (was 1), -b is withdrawn, the rest
    # unchanged; the counters move by the difference.
    again = []
    for s in sales:
        first = s.lines.first()
        again += [record(f"{s.pk}-a", s, qty=3, line=first, restock=True),
                  {**record(f"{s.pk}-b", s), "line_items": []}]
    # A fixed number of statements (SQLite splits a bulk insert into ~30-row batches).
    with django_assert_max_num_queries(25 if connection.vendor == "postgresql" else 80):
        data = assert_ok(api.post("/api/v2/refunds/json", again, format="json"), 201)
    assert data["replaced"] == 250 and data["withdrawn"] == 250
    s0 = Sale.objects.get(pk=sales[0].pk)
    assert [ln.refunded_quantity for ln in s0.lines.order_by("pk")] == [3, 2]
    live = Refund.objects.filter(sale=s0, withdrawn_at__isnull=True)
    assert sum(r.total for r in live) == s0.amount_refunded
    assert Payment.objects.get(sale=s0).refunded_amount == s0.amount_refunded
    assert sum(SaleLine.objects.get(pk=ln.pk).refunded_amount for ln in s0.lines.all()) == sum(
        r.lines_amount for r in live)
    product.refresh_from_db()
    assert product.stock == -6 * 250 + 3 * 250
    assert Refund.objects.filter(external_id=f"{s0.pk}-b").get().withdrawn_at is not None

    status = assert_ok(api.get("/api/v2/refunds/status"))
    assert status["total"] == 750 and status["last_batch_count"] == 500
    assert status["last_success"] and status["last_failure"] is None

    # The same file again changes nothing.
    data = assert_ok(api.post("/api/v2/refunds/json", again, format="json"), 201)
    assert data["unchanged"] == 500
    assert Refund.objects.filter(sale=s0).count() == 5
    assert_books_balance()


def test_resubmission_that_empties_the_sale_then_backs_off(api):
    sale = SaleFactory(lines=[(2, 1000)], shipping_fee=300)
    assert_ok(api.post("/api/v2/refunds/json", [record("x", sale, qty=2)], format="json"), 201)
    sale.refresh_from_db()
    assert sale.status == "refunded" and sale.refunded_shipping_fee == 300
    assert_ok(api.post("/api/v2/refunds/json", [record("x", sale, qty=1)], format="json"), 201)
    sale.refresh_from_db()
    assert sale.status == "partially_refunded" and sale.refunded_shipping_fee == 0
    assert sale.amount_refunded == 1200
    # A withdrawn record sent again with items comes back.
    assert_ok(api.post("/api/v2/refunds/json", [{**record("x", sale), "line_items": []}],
                       format="json"), 201)
    sale.refresh_from_db()
    assert sale.amount_refunded == 0 and sale.status == "paid"
    assert_ok(api.post("/api/v2/refunds/json", [record("x", sale, qty=1)], format="json"), 201)
    sale.refresh_from_db()
    assert sale.amount_refunded == 1200
    assert_books_balance()


def test_import_cannot_over_refund_beside_api_refunds(api, paid_sale):
    api.post(f"/api/v2/sales/{paid_sale.pk}/refunds/", {"items": [
        {"item_id": paid_sale.lines.first().pk, "quantity": 2}]}, format="json")
    err = assert_error(api.post("/api/v2/refunds/json", [record("y", paid_sale, qty=2)],
                                format="json"), 400, "invalid_records")
    assert err["errors"]["[0].line_items[0].quantity"] == ["only 1 left to refund"]
    assert_books_balance()


def test_sources_are_separate_namespaces(api, paid_sale):
    assert_ok(api.post("/api/v2/refunds/json?source=shop-a", [record("1", paid_sale)],
                       format="json"), 201)
    assert_ok(api.post("/api/v2/refunds/json?source=shop-b", [record("1", paid_sale)],
                       format="json"), 201)
    assert Refund.objects.filter(external_id="1").count() == 2
    assert_books_balance()


def test_validate_query_count_does_not_grow(api):
    sales = [SaleFactory(lines=[(3, 100)]) for _ in range(20)]
    small = [record(f"s{i}", s) for i, s in enumerate(sales[:2])]
    big = [record(f"b{i}", s) for i, s in enumerate(sales)]
    api.get("/api/v2/refunds/status")
    with CaptureQueriesContext(connection) as few:
        api.post("/api/v2/refunds/validate", small, format="json")
    with CaptureQueriesContext(connection) as many:
        api.post("/api/v2/refunds/validate", big, format="json")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_import_refunds_command(tmp_path, paid_sale):
    path = tmp_path / "refunds.json"
    path.write_text(json.dumps([record("c-1", paid_sale)]))
    out = StringIO()
    call_command("import_refunds", str(path), "--validate-only", stdout=out, stderr=StringIO())
    assert "1 record(s) valid" in out.getvalue() and not Refund.objects.exists()
    err = StringIO()
    call_command("import_refunds", str(path), stdout=out, stderr=err)
    assert "1/1" in err.getvalue()
    assert Refund.objects.get().source == "import"
    assert RefundImport.objects.get().source == "command"
    out = StringIO()
    call_command("refund_status", stdout=out)
    assert "total: 1" in out.getvalue() and "last_batch_count: 1" in out.getvalue()
    assert_books_balance()


def test_import_refunds_command_exits_non_zero_on_refusal(tmp_path, paid_sale):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([record("c-1", paid_sale, qty=9)]))
    out = StringIO()
    with pytest.raises(CommandError, match="invalid_records"):
        call_command("import_refunds", str(path), stdout=out, stderr=StringIO())
    assert "record 0 (id c-1) line_items[0].quantity" in out.getvalue()
    (tmp_path / "nojson.json").write_text("{")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_refunds", str(tmp_path / "nojson.json"))
    assert_books_balance()


EXAMPLE = Path(__file__).parents[2] / "examples" / "refunds.json"


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_example_file_imports_against_the_demo_data():
    """examples/refunds.json names seed_demo's sales (DEMO-00xx) and, in a freshly seeded
    database, their lines: it validates as it stands (README, "Bulk refund records")."""
    call_command("seed_demo", stdout=StringIO(), stderr=StringIO())
    out = StringIO()
    call_command("import_refunds", str(EXAMPLE), "--validate-only", stdout=out,
                 stderr=StringIO())
    assert "3 record(s) valid" in out.getvalue()
    records = json.loads(EXAMPLE.read_text())
    assert all(r["order_id"].startswith("DEMO-") for r in records)
    assert not Refund.objects.filter(source="import").exists()
    assert_books_balance()


@pytest.mark.parametrize("value,expected", [("yes", True), ("no", False), ("YES", True),
                                            (" No ", False), (True, True), (False, False)])
def test_bulk_restock_accepts_yes_no_like_the_rest_of_the_api(api, value, expected):
    product = ProductFactory(stock=0)
    sale = SaleFactory(lines=[(3, 1000)], product=product)
    data = assert_ok(api.post("/api/v2/refunds/json", [record("y", sale, restock=value)],
                              format="json"), 201)
    assert data["created"] == 1
    assert Refund.objects.get(external_id="y").restock is expected
    product.refresh_from_db()
    assert product.stock == (-3 + 1 if expected else -3)


@pytest.mark.parametrize("value", ["maybe", 1, None, []])
def test_bulk_restock_refuses_what_is_not_a_boolean(api, paid_sale, value):
    err = assert_error(api.post("/api/v2/refunds/validate",
                                [record("y", paid_sale, restock=value)], format="json"),
                       400, "invalid_records")
    assert err["errors"] == {"[0].restock": ['Must be true, false, "yes" or "no".']}


def test_bulk_record_schema_says_what_the_parser_accepts(api, paid_sale):
    spec = api.get("/api/v2/schema/?format=json").json()
    props = spec["components"]["schemas"]["BulkRecordRequest"]["properties"]
    assert {"string", "integer"} == {alt["type"] for alt in props["id"]["oneOf"]}
    assert {"string", "integer"} == {alt["type"] for alt in props["sale_id"]["oneOf"]}
    assert {"string", "integer"} == {alt["type"] for alt in props["order_id"]["oneOf"]}
    assert {"boolean", "string"} == {alt["type"] for alt in props["restock"]["oneOf"]}
    assert "minLength" not in props["note"] and "minLength" not in props["batch_id"]
    item = spec["components"]["schemas"]["BulkLineItemRequest"]["properties"]
    assert item["item_id"]["minimum"] == 1 and item["item_id"]["maximum"] == 2**63 - 1
    assert item["quantity"]["maximum"] == 2**31 - 1
    # ... and the parser takes what the schema allows: an integer id, a sale_id as a
    # string, blank note and batch_id, "no".
    line = paid_sale.lines.first()
    rec = {"id": 778, "sale_id": str(paid_sale.pk), "note": "", "batch_id": "",
           "restock": "no", "line_items": [{"item_id": line.pk, "quantity": 1}]}
    assert_ok(api.post("/api/v2/refunds/json", [rec], format="json"), 201)
    refund = Refund.objects.get(external_id="778")
    assert refund.note == "" and refund.batch_id == "" and refund.restock is False


def test_status_counts_the_live_refunds_of_the_source_asked(api):
    a, b = SaleFactory(lines=[(3, 100)]), SaleFactory(lines=[(3, 100)])
    assert_ok(api.post("/api/v2/refunds/json?source=shop-a", [record("1", a), record("2", b)],
                       format="json"), 201)
    assert_ok(api.post("/api/v2/refunds/json?source=shop-b", [record("1", a)],
                       format="json"), 201)
    # Withdrawn records are not counted.
    assert_ok(api.post("/api/v2/refunds/json?source=shop-a",
                       [{**record("2", b), "line_items": []}], format="json"), 201)
    assert assert_ok(api.get("/api/v2/refunds/status?source=shop-a"))["total"] == 1
    assert assert_ok(api.get("/api/v2/refunds/status?source=shop-b"))["total"] == 1
    assert assert_ok(api.get("/api/v2/refunds/status?source=nobody"))["total"] == 0
    everything = assert_ok(api.get("/api/v2/refunds/status"))
    assert everything["total"] == 2 and everything["last_batch_count"] == 1
    assert_books_balance()
