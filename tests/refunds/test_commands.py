from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from backoffice.models import IdempotencyKey
from refunds.models import Refund
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


def test_refund_sale_run_twice_with_one_idempotency_key_replays_the_first_refund(paid_sale):
    args = ("refund_sale", paid_sale.number, "--idempotency-key", "ops-42", "--commit")
    first = run(*args)
    refund = Refund.objects.get()
    assert f"refunded: refund {refund.pk} total {refund.total} status succeeded" in first
    assert f"line: {paid_sale.lines.get().pk} 'Item 1' quantity 3 amount 3600 tax 720" in first
    second = run(*args)  # the first refund left nothing to refund: still no error
    assert f"replayed: refund {refund.pk} total {refund.total}" in second
    assert Refund.objects.count() == 1
    assert "sale: " in second and "(id " in second and "refunded)" in second


def test_refund_sale_idempotency_key_with_another_request_is_refused(paid_sale):
    line = paid_sale.lines.get()
    run("refund_sale", paid_sale.number, "--item", f"{line.pk}:1", "--idempotency-key", "k",
        "--commit")
    with pytest.raises(CommandError, match="idempotency_key_reused"):
        run("refund_sale", paid_sale.number, "--item", f"{line.pk}:2", "--idempotency-key", "k",
            "--commit")
    assert Refund.objects.count() == 1


def test_refund_sale_commit_prints_what_it_wrote_not_a_preview(paid_sale):
    line = paid_sale.lines.get()
    out = run("refund_sale", paid_sale.number, "--item", f"{line.pk}:1", "--commit")
    refund = Refund.objects.get()
    payment = paid_sale.payments.get()
    assert out.splitlines() == [
        f"sale: {paid_sale.number} (id {paid_sale.pk}, partially_refunded)",
        f"line: {line.pk} 'Item 1' quantity 1 amount 1200 tax 240",
        "fees: processing 0 reseller 0 shipping 0",
        f"payment: {payment.pk} card 1440 offline",
        "total: 1440 (£14.40)",
        f"refunded: refund {refund.pk} total 1440 status succeeded",
    ]


def test_command_refusal_says_each_detail_once(paid_sale):
    line = paid_sale.lines.get()
    with pytest.raises(CommandError) as exc:
        run("refund_sale", paid_sale.number, "--item", f"{line.pk}:9", "--commit")
    text = str(exc.value)
    assert text.startswith("refund_quantity_exceeded: ")
    assert text.count("only 3 left to refund") == 1, text


def test_command_refusal_keeps_details_the_message_lacks():
    from backoffice.errors import ValidationFailedError
    from refunds.management.commands._common import domain_error

    exc = ValidationFailedError("Bad input (a: bad).",
                                extra={"a": ["bad"], "b": ["Bad input (a: bad)."], "c": ["big"]})
    assert str(domain_error(exc)) == f"{exc.code}: Bad input (a: bad). (c: big)"


def test_cancel_sale_prints_the_refund_and_its_status(paid_sale):
    out = run("cancel_sale", paid_sale.number, "--reason", "customer", "--commit")
    refund = Refund.objects.get()
    assert refund.type == "cancellation" and refund.reason == "customer"
    assert out.splitlines()[0] == f"sale: {paid_sale.number} (id {paid_sale.pk}, cancelled)"
    assert out.splitlines()[-1] == (
        f"cancelled: {paid_sale.number} refund {refund.pk} total {refund.total} "
        f"status {refund.status}"
    )
    assert refund.status == "succeeded"


def test_cancel_sale_of_an_unpaid_sale_says_there_is_no_refund():
    sale = SaleFactory(paid=False)
    out = run("cancel_sale", sale.number, "--commit")
    assert f"cancelled: {sale.number} nothing was paid, no refund" in out
    assert not Refund.objects.exists()
    assert Sale.objects.get(pk=sale.pk).status == "cancelled"


def _logins(out: str) -> dict[str, str]:
    """username -> password from seed_demo's table of random passwords."""
    rows = out.split("Staff logins", 1)[1].splitlines()[1:5]
    return {row.split()[0]: row.split()[1] for row in rows}


def test_seed_demo_outside_debug_gives_each_login_a_random_password(settings):
    from django.contrib.auth import get_user_model

    settings.DEBUG = False
    out = run("seed_demo")
    assert "backoffice-demo" not in out
    passwords = _logins(out)
    assert set(passwords) == {"admin", "clerk", "supervisor", "viewer"}
    assert len(set(passwords.values())) == 4
    assert f"login: admin / {passwords['admin']}" in out
    users = get_user_model().objects
    for username, password in passwords.items():
        user = users.get(username=username)
        assert user.check_password(password) and not user.check_password("backoffice-demo")
    again = _logins(run("seed_demo"))  # a second run gives new ones (the old ones are gone)
    assert not set(again.values()) & set(passwords.values())
    assert users.get(username="admin").check_password(again["admin"])


def test_seed_demo_in_debug_or_when_asked_uses_the_documented_demo_password(settings):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects
    settings.DEBUG = True
    out = run("seed_demo")
    assert "password for all: backoffice-demo" in out and "login: admin / backoffice-demo" in out
    assert admin.get(username="admin").check_password("backoffice-demo")
    settings.DEBUG = False
    run("seed_demo")
    assert not admin.get(username="admin").check_password("backoffice-demo")
    out = run("seed_demo", "--demo-passwords")
    assert "login: admin / backoffice-demo" in out
    assert admin.get(username="clerk").check_password("backoffice-demo")
