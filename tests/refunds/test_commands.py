from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from refunds.models import IdempotencyKey, Refund
from sales.models import Sale
from tests.factories import SaleFactory

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_refund_sale_prints_the_preview_and_writes_nothing_without_commit(paid_sale):
    line = paid_sale.lines.get()
    out = run("refund_sale", paid_sale.number, "--item", f"{line.pk}:2")
    assert f"line: {line.pk}" in out and "total: 2880" in out and "dry run" in out
    assert not Refund.objects.exists()


def test_refund_sale_with_commit_refunds_by_external_id():
    sale = SaleFactory(external_id="WEB-9", lines=[(3, 1000)])
    line = sale.lines.get()
    out = run("refund_sale", "WEB-9", "--item", f"{line.pk}:1", "--no-restock",
              "--reason", "damaged", "--commit")
    refund = Refund.objects.get()
    assert f"refunded: refund {refund.pk} total {refund.total}" in out
    assert refund.source == "command" and refund.restock is False and refund.reason == "damaged"


def test_refund_sale_refusal_exits_non_zero_with_the_sentence(paid_sale):
    line = paid_sale.lines.get()
    with pytest.raises(CommandError) as exc:
        run("refund_sale", str(paid_sale.pk), "--item", f"{line.pk}:9", "--commit")
    assert "refund_quantity_exceeded" in str(exc.value)
    assert "only 3 left to refund" in str(exc.value)
    assert not Refund.objects.exists()


def test_refund_sale_unknown_sale_is_refused():
    with pytest.raises(CommandError, match="sale_not_found"):
        run("refund_sale", "S-999999")


def test_cancel_sale_previews_then_cancels_once(paid_sale):
    out = run("cancel_sale", paid_sale.number, "--reason", "fraud")
    assert "dry run" in out
    assert Sale.objects.get(pk=paid_sale.pk).status == "paid"
    out = run("cancel_sale", paid_sale.number, "--reason", "fraud", "--commit")
    assert out.startswith("sale:") and "cancelled:" in out
    assert Sale.objects.get(pk=paid_sale.pk).status == "cancelled"
    assert "already cancelled" in run("cancel_sale", paid_sale.number, "--commit")


def test_cancel_sale_of_refunded_sale_exits_non_zero(paid_sale):
    run("refund_sale", paid_sale.number, "--item", f"{paid_sale.lines.get().pk}:1", "--commit")
    with pytest.raises(CommandError, match="sale_not_cancellable"):
        run("cancel_sale", paid_sale.number, "--commit")


def test_seed_demo_is_idempotent_and_prints_a_login():
    out = run("seed_demo")
    assert "login: admin /" in out
    count = Sale.objects.count()
    assert count >= 40
    run("seed_demo")
    assert Sale.objects.count() == count


def test_seed_demo_bulk_tops_up_to_n_sales():
    run("seed_demo", "--sales", "30", "--batch", "7")
    bulk = Sale.objects.filter(external_id__startswith="BULK-")
    assert bulk.count() == 30
    assert all(s.number == f"S-{s.pk:06d}" for s in bulk)
    run("seed_demo", "--sales", "30")
    assert bulk.count() == 30


def test_purge_idempotency_keys_keeps_a_week():
    old = IdempotencyKey.objects.create(key="old", request_hash="x")
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    IdempotencyKey.objects.create(key="new", request_hash="x")
    assert "purged: 1" in run("purge_idempotency_keys", "--days", "1")
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
