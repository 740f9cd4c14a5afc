"""manage.py audit_books / books_audit: every counter recomputed from the ledger rows."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from refunds.models import Refund, RefundLine, RefundStatus
from refunds.services import (
    RefundOptions,
    refund_create,
    refund_settle,
    refunds_bulk_import,
    sale_cancel,
)
from refunds.services.audit import Difference, books_audit
from sales.models import Customer, Payment, Sale, SaleCancellation, SaleLine, SaleStatus
from tests.books import assert_books_balance
from tests.factories import ProductFactory, SaleFactory

pytestmark = pytest.mark.django_db


def _record(rid, sale, items, restock=False):
    return {"id": rid, "sale_id": sale.pk, "refunded_at": "2026-11-20T10:00:00Z",
            "reason": "requested_by_customer", "restock": restock,
            "line_items": [{"item_id": line.pk, "quantity": q} for line, q in items]}


@pytest.fixture
def books():
    """A little of everything the ledger holds: partial, full, balance, failed, pending,
    cancelled (paid and unpaid), quote, imported then replaced and withdrawn."""
    product = ProductFactory(stock=10)
    s = {}
    s["partial"] = SaleFactory(
        lines=[(3, 1200), (2, 500)], product=product, processing_fee=150, shipping_fee=499,
        payments=[{"amount": 2000, "method": "card"}, {"amount": 3369, "method": "cash"}],
    )
    lines = list(s["partial"].lines.order_by("pk"))
    refund_create(sale_id=s["partial"].pk, items={lines[0].pk: 1, lines[1].pk: 1})
    s["full"] = SaleFactory(lines=[(2, 700)], shipping_fee=300)
    refund_create(sale_id=s["full"].pk)
    s["balance"] = SaleFactory(lines=[(1, 1000)])
    refund_create(sale_id=s["balance"].pk, options=RefundOptions(type="balance_refund"))
    s["failed"] = SaleFactory(lines=[(2, 900)], gateway="sandbox")
    Payment.objects.filter(sale=s["failed"]).update(gateway_reference="fail")
    failed = refund_create(sale_id=s["failed"].pk, items={s["failed"].lines.get().pk: 1})
    refund_settle(refund_id=failed.refund.pk)  # what the task does after the commit
    s["cancelled"] = SaleFactory(lines=[(2, 800)], gateway="sandbox", reseller_fee=99)
    sale_cancel(sale_id=s["cancelled"].pk, reason="customer")
    s["unpaid_cancelled"] = SaleFactory(lines=[(1, 400)], paid=False)
    sale_cancel(sale_id=s["unpaid_cancelled"].pk, reason="declined")
    s["unpaid"] = SaleFactory(lines=[(1, 400)], paid=False)
    s["quote"] = SaleFactory(lines=[(1, 400)], kind="quote")
    s["partly_paid"] = SaleFactory(lines=[(4, 250)], payments=[
        {"amount": 600, "method": "card"}])
    s["imported"] = SaleFactory(lines=[(5, 100), (2, 300)])
    imp = list(s["imported"].lines.order_by("pk"))
    refunds_bulk_import(records=[_record("a", s["imported"], [(imp[0], 2)], restock=True),
                                 _record("b", s["imported"], [(imp[1], 1)])])
    refunds_bulk_import(records=[_record("a", s["imported"], [(imp[0], 3)]),
                                 _record("b", s["imported"], [])])
    s["pending"] = SaleFactory(lines=[(2, 600)], gateway="sandbox")
    pending = refund_create(sale_id=s["pending"].pk)  # not settled: the gateway has not answered
    # The ledger is what the scenario says it is (else the audit would test nothing).
    failed.refund.refresh_from_db()
    pending.refund.refresh_from_db()
    assert failed.refund.status == RefundStatus.FAILED
    assert pending.refund.status == RefundStatus.PENDING
    assert Refund.objects.filter(sale=s["imported"], withdrawn_at__isnull=False).count() == 2
    for sale in s.values():
        sale.refresh_from_db()
    assert s["cancelled"].status == SaleStatus.CANCELLED
    assert s["full"].status == SaleStatus.REFUNDED
    assert s["failed"].status == SaleStatus.PAID
    assert s["pending"].status == SaleStatus.REFUNDED
    return s


def audit_command(*args) -> tuple[int, list[str]]:
    """(exit code, lines printed); a refusal's message is the last line."""
    out = StringIO()
    try:
        call_command("audit_books", *args, stdout=out)
    except CommandError as exc:  # manage.py exits with its returncode
        return exc.returncode, [*out.getvalue().splitlines(), str(exc)]
    return 0, out.getvalue().splitlines()


def test_clean_books_are_clean(books):
    assert books_audit() == []
    code, lines = audit_command()
    assert code == 0
    assert lines == ["differences: 0"]


def test_an_empty_database_is_clean():
    assert books_audit() == []


def _first_line(sale):
    return SaleLine.objects.filter(sale=sale).order_by("pk")[:1]


# (sale of the fixture, model, rows, update, the one field reported). Each corrupts one
# counter with the ORM and expects that one difference, and nothing else.
CORRUPTIONS = [
    ("partial", SaleLine, _first_line, {"refunded_quantity": F("refunded_quantity") + 1},
     "refunded_quantity"),
    ("partial", SaleLine, _first_line, {"refunded_amount": F("refunded_amount") - 1},
     "refunded_amount"),
    ("partial", SaleLine, _first_line, {"refunded_tax": F("refunded_tax") + 1}, "refunded_tax"),
    ("partial", Payment, lambda s: Payment.objects.filter(sale=s).order_by("pk")[:1],
     {"refunded_amount": F("refunded_amount") + 1}, "refunded_amount"),
    ("full", Payment, lambda s: Payment.objects.filter(sale=s),
     {"refunded_amount": F("refunded_amount") - 5}, "refunded_amount"),
    ("partial", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"amount_refunded": F("amount_refunded") + 1}, "amount_refunded"),
    ("partial", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"refunded_units": F("refunded_units") + 1}, "refunded_units"),
    ("partial", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"refunded_processing_fee": F("processing_fee")}, "refunded_processing_fee"),
    ("full", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"refunded_shipping_fee": 0}, "refunded_shipping_fee"),
    ("cancelled", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"refunded_reseller_fee": 0}, "refunded_reseller_fee"),
    ("partly_paid", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"amount_paid": F("amount_paid") + 1}, "amount_paid"),
    ("partial", Sale, lambda s: Sale.objects.filter(pk=s.pk), {"units": F("units") + 1},
     "units"),
    ("partial", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"status": SaleStatus.PAID}, "status"),
    ("failed", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"status": SaleStatus.PARTIALLY_REFUNDED}, "status"),
    ("quote", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"status": SaleStatus.UNPAID}, "status"),
    ("partial", Sale, lambda s: Sale.objects.filter(pk=s.pk),
     {"status": SaleStatus.CANCELLED}, "cancellation"),
    ("balance", Customer, lambda s: Customer.objects.filter(pk=s.customer_id),
     {"store_balance": F("store_balance") + 1}, "store_balance"),
    ("partial", Customer, lambda s: Customer.objects.filter(pk=s.customer_id),
     {"store_balance": 7}, "store_balance"),
]


def test_each_corrupted_counter_is_reported_alone_and_exits_non_zero(books):
    """One scenario, each corruption in a savepoint rolled back after: the books are
    made once (they are most of the time of this module)."""
    for sale_key, model, rows, update, field in CORRUPTIONS:
        label = f"{sale_key}: {model.__name__}.{field}"
        with transaction.atomic():
            sale = books[sale_key]
            pks = list(rows(sale).values_list("pk", flat=True))
            assert model.objects.filter(pk__in=pks).update(**update) == 1, label
            differences = books_audit()
            assert [(d.model, d.pk, d.field) for d in differences] == [
                (model._meta.model_name, pks[0], field)], label
            d = differences[0]
            assert d.stored != d.ledger, label
            if model is not Customer:
                assert d.sale_id == sale.pk, label
            code, lines = audit_command()
            assert code == 1, label
            assert lines[:2] == [d.line(), "differences: 1"], label
            # One sale asked: that sale's differences only.
            other = books["quote"] if sale_key != "quote" else books["full"]
            assert books_audit([other.pk]) == [], label
            assert books_audit([sale.pk]) == differences, label
            transaction.set_rollback(True)
        assert books_audit() == [], label


@pytest.mark.parametrize("sale_key,fields", [
    ("unpaid_cancelled", {"cancellation"}),
    # Paid: its cancellation refund is now a cancellation of no cancelled sale, too.
    ("cancelled", {"cancellation", "cancelled"}),
])
def test_a_cancelled_sale_without_its_cancellation_row_is_reported(books, sale_key, fields):
    sale = books[sale_key]
    assert SaleCancellation.objects.filter(sale=sale).delete()[0] == 1
    found = books_audit()
    assert {(d.model, d.pk, d.field) for d in found} == {("sale", sale.pk, f) for f in fields}
    cancellation = next(d for d in found if d.field == "cancellation")
    assert (cancellation.stored, cancellation.ledger) == (1, 0)
    assert audit_command()[0] == 1


@pytest.mark.parametrize("sale_key,fields", [
    ("unpaid", {"cancellation"}),
    # Paid: a cancelled sale that was paid has its cancellation refund, and this has none.
    ("partial", {"cancellation", "cancelled"}),
])
def test_a_cancellation_row_on_a_sale_not_cancelled_is_reported(books, sale_key, fields):
    sale = books[sale_key]
    SaleCancellation.objects.create(sale=sale, cancelled_at=timezone.now(), reason="staff")
    found = books_audit()
    assert {(d.model, d.pk, d.field) for d in found} == {("sale", sale.pk, f) for f in fields}
    cancellation = next(d for d in found if d.field == "cancellation")
    assert (cancellation.stored, cancellation.ledger) == (0, 1)
    assert books_audit([books["full"].pk]) == []


def test_a_corruption_the_constraints_allow_no_more_is_refused_by_the_database(books):
    # A fee is given back all or nothing: the counter cannot even be corrupted to 1.
    with pytest.raises(IntegrityError), transaction.atomic():
        Sale.objects.filter(pk=books["partial"].pk).update(refunded_reseller_fee=1)


def test_ledger_rows_that_disagree_with_their_refund_are_reported(books):
    refund = Refund.objects.filter(sale=books["partial"]).get()
    first = RefundLine.objects.filter(refund=refund).order_by("pk").first()
    RefundLine.objects.filter(pk=first.pk).update(quantity=F("quantity") + 1)
    found = {(d.model, d.field) for d in books_audit()}
    # The refund's own units no longer add up, and the line counter no longer matches.
    assert found == {("refund", "units"), ("saleline", "refunded_quantity")}


def test_a_refund_total_that_is_not_its_allocations_is_reported(books):
    Refund.objects.filter(sale=books["full"]).update(total=F("total") - 1,
                                                     lines_amount=F("lines_amount") - 1)
    found = {(d.model, d.field) for d in books_audit()}
    # By the refunds, the sale is no longer refunded in full.
    assert found == {("refund", "lines_amount"), ("refund", "total"),
                     ("sale", "amount_refunded"), ("sale", "status")}


def test_a_sale_total_cannot_be_corrupted_alone_and_is_reported_with_its_parts(books):
    Sale.objects.filter(pk=books["partly_paid"].pk).update(
        subtotal=F("subtotal") + 1, total=F("total") + 1)
    found = {(d.model, d.pk, d.field) for d in books_audit()}
    pk = books["partly_paid"].pk
    assert found == {("sale", pk, "subtotal"), ("sale", pk, "total")}


def test_a_failed_or_withdrawn_refund_that_still_counted_is_reported(books):
    Refund.objects.filter(sale=books["failed"]).update(status=RefundStatus.SUCCEEDED)
    found = {(d.model, d.field) for d in books_audit()}
    assert ("sale", "amount_refunded") in found
    assert ("saleline", "refunded_quantity") in found
    assert ("payment", "refunded_amount") in found


def test_command_checks_one_sale_by_number_or_external_id(books):
    sale = books["partial"]
    Sale.objects.filter(pk=sale.pk).update(units=F("units") + 1)
    code, lines = audit_command("--sale", sale.number)
    assert code == 1 and lines[:2] == [
        Difference("sale", sale.pk, "units", 6, 5, sale.pk).line(), "differences: 1"]
    code, lines = audit_command("--sale", str(books["full"].pk))
    assert (code, lines) == (0, ["differences: 0"])


def test_command_refuses_an_unknown_sale_with_exit_code_2(books):
    code, lines = audit_command("--sale", "S-999999")
    assert code == 2
    assert "sale_not_found" in lines[-1]


def test_the_audit_is_a_fixed_number_of_queries(books, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        assert books_audit() == []
    for _ in range(5):
        sale = SaleFactory(lines=[(2, 100), (1, 50)])
        refund_create(sale_id=sale.pk, items={sale.lines.order_by("pk")[0].pk: 1})
        sale_cancel(sale_id=SaleFactory(lines=[(1, 10)]).pk)
    with django_assert_max_num_queries(6):
        assert books_audit() == []
    with django_assert_max_num_queries(6):
        assert books_audit([books["partial"].pk, books["full"].pk]) == []


def test_the_status_case_agrees_with_compute_status_for_every_status(books):
    seen = set(Sale.objects.values_list("status", flat=True))
    assert seen == set(SaleStatus.values)
    assert_books_balance()
