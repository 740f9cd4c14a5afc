"""One test per machine code the product answers (`backoffice.errors.ERROR_CODES`), each
provoking it through a real door (the API mostly; a service call where no door reaches it)
and checking code and status; plus the checks that keep the list whole: the README's table
lists the same codes, every code has its `test_code_<code>` here, and no module outside
`backoffice/errors.py` spells a code as a string."""

# ruff: noqa: F811 - the API fixtures, imported below, are the tests' parameters

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from backoffice import errors
from backoffice.errors import ERROR_CODES
from backoffice.models import IdempotencyKey
from refunds.models import Refund
from sales.models import Sale
from tests.api.conftest import (  # noqa: F401 - fixtures
    _api_settings,
    api,
    api_key,
    api_user,
    assert_error,
    grant,
    key_client,
    make_key,
)
from tests.factories import SaleFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def refunds_url(sale) -> str:
    return f"/api/v2/sales/{sale.pk}/refunds/"


def one_unit(sale, qty: int = 1, **extra) -> dict:
    return {"items": [{"item_id": sale.lines.first().pk, "quantity": qty}], **extra}


def refused(response, code: str) -> dict:
    """The native envelope with `code` at the status `ERROR_CODES` declares for it."""
    return assert_error(response, ERROR_CODES[code], code)


def dialect_code(response, code: str) -> dict:
    """A dialect's body (Nuweb, the orders API) with `code` at its declared status."""
    assert response.status_code == ERROR_CODES[code], response.content
    body = response.json()
    assert body["code"] == code, body
    return body


def nothing_refunded(sale) -> None:
    assert not Refund.objects.filter(sale=sale).exists()


# The API layer's own codes -------------------------------------------------------------


def test_code_invalid(api, paid_sale):
    err = refused(api.post(refunds_url(paid_sale), one_unit(paid_sale, 0), format="json"),
                  "invalid")
    assert "items[0].quantity" in err["errors"]
    nothing_refunded(paid_sale)


def test_code_malformed(api):
    refused(api.generic("POST", "/api/v2/sales/", "{not json",
                        content_type="application/json"), "malformed")


def test_code_bad_request(api):
    refused(api.get("/api/v2/sales/", HTTP_HOST="evil.example.com"), "bad_request")


def test_code_unknown_field(api, paid_sale):
    err = refused(api.post(refunds_url(paid_sale), one_unit(paid_sale, bogus=1),
                           format="json"), "unknown_field")
    assert "bogus" in err["errors"]
    nothing_refunded(paid_sale)


def test_code_invalid_records(api, paid_sale):
    err = refused(api.post("/api/v2/refunds/json", [{"id": "r-1", "sale_id": paid_sale.pk,
                                                     "line_items": [{"item_id": 999999,
                                                                     "quantity": 1}]}],
                           format="json"), "invalid_records")
    assert "[0].line_items[0].item_id" in err["errors"]
    nothing_refunded(paid_sale)


def test_code_batch_too_large(api, paid_sale):
    line = paid_sale.lines.first()
    records = [{"id": f"r-{i}", "sale_id": paid_sale.pk,
                "line_items": [{"item_id": line.pk, "quantity": 1}]} for i in range(1001)]
    refused(api.post("/api/v2/refunds/validate", records, format="json"), "batch_too_large")


def test_code_payload_too_large(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = "[" + ",".join(['{"id": "r", "sale_id": 1, "line_items": []}'] * 100) + "]"
    refused(api.generic("POST", "/api/v2/refunds/validate", body,
                        content_type="application/json"), "payload_too_large")


def test_code_permission_denied(paid_sale):
    reader = UserFactory(username="reader", is_staff=False)
    grant(reader, "sales.view_sale")
    client = key_client(make_key(reader))
    refused(client.post(refunds_url(paid_sale), {}, format="json"), "permission_denied")
    nothing_refunded(paid_sale)


def test_code_not_found(api):
    refused(api.get("/api/v2/customers/999999/"), "not_found")


def test_code_method_not_allowed(api, customer):
    refused(api.delete(f"/api/v2/customers/{customer.pk}/"), "method_not_allowed")


def test_code_not_acceptable(api):
    refused(api.get("/api/v2/sales/", HTTP_ACCEPT="application/xml"), "not_acceptable")


def test_code_unsupported_media_type(api, paid_sale):
    refused(api.post(refunds_url(paid_sale), "a=b",
                     content_type="application/x-www-form-urlencoded"),
            "unsupported_media_type")


def test_code_throttled(api, settings):
    settings.API_THROTTLE_RATES = {"key": "1/minute", "bulk": "1/minute"}
    assert api.get("/api/v2/sales/").status_code == 200
    response = api.get("/api/v2/sales/")
    refused(response, "throttled")
    assert int(response["Retry-After"]) > 0


def test_code_server_error(api, paid_sale, monkeypatch):
    import refunds.api.views as views

    def unexpected(**kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(views, "refund_create", unexpected)
    body = refused(api.post(refunds_url(paid_sale), one_unit(paid_sale), format="json"),
                   "server_error")
    assert "kaboom" not in body["error"]


def test_code_error():
    """No view of ours answers an error outside the envelope; the renderer is the door a
    new one would go through, so a view of the API's own settings shows it."""

    class Teapot(APIView):
        permission_classes: list = []
        authentication_classes: list = []

        def get(self, request):
            return Response({"why": "short and stout"}, status=400)

    response = Teapot.as_view()(APIRequestFactory().get("/api/v2/teapot"))
    response.render()
    body = json.loads(response.content)
    assert response.status_code == ERROR_CODES["error"]
    assert body["code"] == "error" and body["detail"] == {"why": "short and stout"}


def test_code_unauthenticated(paid_sale):
    response = APIClient().post("/compat/nuweb/v1/orders/refund", {"orderId": paid_sale.pk},
                                format="json")
    assert dialect_code(response, "unauthenticated")["message"] == "Authentication invalid"
    nothing_refunded(paid_sale)


def test_code_authentication_invalid(paid_sale):
    url = f"/compat/orders-api/connections/{uuid.uuid4()}/orders/{paid_sale.pk}/refunds"
    dialect_code(key_client("nope.nothing").post(url, {}, format="json"),
                 "authentication_invalid")
    nothing_refunded(paid_sale)


def test_code_connection_not_found(api, paid_sale):
    url = f"/compat/orders-api/connections/{uuid.uuid4()}/orders/{paid_sale.pk}/refunds"
    dialect_code(api.post(url, {}, format="json"), "connection_not_found")
    nothing_refunded(paid_sale)


def test_code_unknown_version(api):
    """Klar's body has no code: the door answers the status, the check names the code."""
    from refunds.compat.klar.views import KlarValidateView

    response = api.post("/compat/klar/01.2020/refunds/validate", [], format="json")
    assert response.status_code == ERROR_CODES["unknown_version"], response.content
    with pytest.raises(errors.UnknownVersionError) as exc:
        KlarValidateView().check_version("01.2020")
    assert exc.value.code == "unknown_version"
    assert exc.value.status == ERROR_CODES["unknown_version"]


# Domain errors ------------------------------------------------------------------------


def test_code_sale_not_found(api):
    refused(api.post("/api/v2/sales/999999/refunds/", {}, format="json"), "sale_not_found")


def test_code_refund_not_found(api):
    refused(api.get("/api/v2/refunds/999999/"), "refund_not_found")


def test_code_ambiguous_sale(api):
    first = SaleFactory(lines=[(2, 500)])
    SaleFactory(lines=[(2, 500)], external_id=str(first.pk))
    refused(api.post(refunds_url(first), {}, format="json"), "ambiguous_sale")
    nothing_refunded(first)


def test_code_duplicate_external_id(api):
    SaleFactory(external_id="WEB-1001")
    body = {"kind": "invoice", "currency": "GBP", "external_id": "WEB-1001",
            "lines": [{"sku": "MUG-1", "description": "Mug", "quantity": 1,
                       "unit_price": 1200, "tax_rate": "0.20"}]}
    refused(api.post("/api/v2/sales/", body, format="json"), "duplicate_external_id")
    assert Sale.objects.filter(external_id="WEB-1001").count() == 1


def test_code_idempotency_key_in_use(api, api_key, paid_sale):
    # A first request with this key that has not finished (no response stored yet).
    IdempotencyKey.objects.create(key="busy", request_hash="x",
                                  owner=f"key:{api_key.partition('.')[0]}")
    refused(api.post(refunds_url(paid_sale), one_unit(paid_sale), format="json",
                     HTTP_IDEMPOTENCY_KEY="busy"), "idempotency_key_in_use")
    nothing_refunded(paid_sale)


def test_code_idempotency_key_reused(api, paid_sale):
    api.post(refunds_url(paid_sale), one_unit(paid_sale), format="json",
             HTTP_IDEMPOTENCY_KEY="k-1")
    refused(api.post(refunds_url(paid_sale), one_unit(paid_sale, 2), format="json",
                     HTTP_IDEMPOTENCY_KEY="k-1"), "idempotency_key_reused")
    assert Refund.objects.filter(sale=paid_sale).count() == 1


def test_code_stale_refund_state(api, paid_sale):
    refused(api.post(refunds_url(paid_sale), one_unit(paid_sale, expected_refunded_amount=5),
                     format="json"), "stale_refund_state")
    nothing_refunded(paid_sale)


def test_code_sale_cancelled(api, paid_sale):
    api.put(f"/api/v2/sales/cancel/{paid_sale.pk}", {}, format="json")
    refused(api.post(refunds_url(paid_sale), {}, format="json"), "sale_cancelled")


def test_code_sale_not_cancellable(api, paid_sale):
    api.post(refunds_url(paid_sale), one_unit(paid_sale), format="json")
    refused(api.put(f"/api/v2/sales/cancel/{paid_sale.pk}", {}, format="json"),
            "sale_not_cancellable")
    assert Sale.objects.get(pk=paid_sale.pk).status != "cancelled"


def test_code_sale_not_refundable(api):
    unpaid = SaleFactory(paid=False)
    refused(api.post(refunds_url(unpaid), {}, format="json"), "sale_not_refundable")
    nothing_refunded(unpaid)


def test_code_sale_not_editable(api, paid_sale):
    refused(api.patch(f"/api/v2/sales/{paid_sale.pk}/", {"shipping_fee": 1}, format="json"),
            "sale_not_editable")


def test_code_nothing_to_refund(api, paid_sale):
    api.post(refunds_url(paid_sale), {}, format="json")
    refused(api.post(refunds_url(paid_sale), {}, format="json"), "nothing_to_refund")
    assert Refund.objects.filter(sale=paid_sale).count() == 1


def test_code_unknown_line(api, paid_sale):
    refused(api.post(refunds_url(paid_sale), {"items": [{"item_id": 999999, "quantity": 1}]},
                     format="json"), "unknown_line")
    nothing_refunded(paid_sale)


def test_code_unknown_payment(api, paid_sale):
    refused(api.post(refunds_url(paid_sale), one_unit(
        paid_sale, splits=[{"payment_id": 999999, "amount": 1440}]), format="json"),
        "unknown_payment")
    nothing_refunded(paid_sale)


def test_code_refund_quantity_exceeded(api, paid_sale):
    err = refused(api.post(refunds_url(paid_sale), one_unit(paid_sale, 4), format="json"),
                  "refund_quantity_exceeded")
    assert "items[0].quantity" in err["errors"]
    nothing_refunded(paid_sale)


def test_code_refund_exceeds_paid(api):
    sale = SaleFactory(payments=[{"amount": 100, "method": "cash"}], lines=[(2, 1000)])
    refused(api.post(refunds_url(sale), {}, format="json"), "refund_exceeds_paid")
    nothing_refunded(sale)


def refund_one_unit_split(api, sale, amount: int):
    """One unit (1440) refunded with `amount` of it from the sale's payment."""
    splits = [{"payment_id": sale.payments.first().pk, "amount": amount}]
    return api.post(refunds_url(sale), one_unit(sale, splits=splits), format="json")


def test_code_split_mismatch(api, paid_sale):
    refused(refund_one_unit_split(api, paid_sale, 1), "split_mismatch")
    nothing_refunded(paid_sale)


def test_code_split_exceeds_payment(api, paid_sale):
    refused(refund_one_unit_split(api, paid_sale, 999999), "split_exceeds_payment")
    nothing_refunded(paid_sale)


def test_code_payment_exceeds_balance(api, paid_sale):
    refused(api.put(f"/api/v2/sales/balance/{paid_sale.pk}", {"amount": 1, "method": "cash"},
                    format="json"), "payment_exceeds_balance")
    assert paid_sale.payments.count() == 1


def test_code_sale_is_quote(api):
    quote = SaleFactory(kind="quote", paid=False)
    refused(api.put(f"/api/v2/sales/balance/{quote.pk}", {"amount": 1, "method": "cash"},
                    format="json"), "sale_is_quote")
    assert not quote.payments.exists()


def test_code_sale_has_refunds(api, paid_sale):
    api.post(refunds_url(paid_sale), one_unit(paid_sale), format="json")
    refused(api.put(f"/api/v2/sales/balance/{paid_sale.pk}", {"amount": 1, "method": "cash"},
                    format="json"), "sale_has_refunds")
    assert paid_sale.payments.count() == 1


def test_code_no_customer_for_balance(api):
    sale = SaleFactory(with_customer=False)
    refused(api.post(refunds_url(sale), {"type": "balance_refund"}, format="json"),
            "no_customer_for_balance")
    nothing_refunded(sale)


def test_code_refund_not_awaiting_action(api, paid_sale):
    """Staff's "record offline" (admin): a service call, the admin's own door."""
    from refunds.services.settle import refund_settle_offline

    api.post(refunds_url(paid_sale), one_unit(paid_sale), format="json")
    refund = Refund.objects.get(sale=paid_sale)
    with pytest.raises(errors.RefundNotAwaitingActionError) as exc:
        refund_settle_offline(refund_id=refund.pk)
    assert exc.value.code == "refund_not_awaiting_action"
    assert exc.value.status == ERROR_CODES["refund_not_awaiting_action"]


def test_code_constraint_violation(api, paid_sale):
    """The database refuses what the checks let through (as after a lost race): the line
    has units left to give back, the sale's counter says it has none."""
    Sale.objects.filter(pk=paid_sale.pk).update(refunded_units=paid_sale.units)
    err = refused(api.post(refunds_url(paid_sale), one_unit(paid_sale), format="json"),
                  "constraint_violation")
    assert "sale_refunded_units_lte_units" in err["errors"]["constraint"][0]
    nothing_refunded(paid_sale)


# The list stays whole ----------------------------------------------------------------


def readme_table() -> dict[str, str]:
    """The README's error-code table as {code: status as written}."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Error codes", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if row.startswith("|") and len(cells) >= 3 and cells[0] not in ("status", "---"):
            for code in re.findall(r"`([a-z_]+)`", cells[1]):
                assert code not in table, f"{code} has two rows in the README's table"
                table[code] = cells[0]
    return table


def test_the_readme_table_lists_exactly_the_declared_codes_and_statuses():
    table = readme_table()
    assert set(table) == set(ERROR_CODES), (
        f"only in README: {sorted(set(table) - set(ERROR_CODES))}; "
        f"only in backoffice/errors.py: {sorted(set(ERROR_CODES) - set(table))}"
    )
    wrong = {code: (status, ERROR_CODES[code]) for code, status in table.items()
             if status.isdigit() and int(status) != ERROR_CODES[code]}
    assert wrong == {}


def test_every_declared_code_has_its_test_here():
    tested = {name.removeprefix("test_code_") for name in globals()
              if name.startswith("test_code_")}
    assert tested == set(ERROR_CODES)


# `code="..."`, `code = "..."` or `"code": "..."`: a code spelled where it is used.
SPELLED = re.compile(r"""\bcode\s*=\s*["'][a-z_]+["']|["']code["']\s*:\s*["'][a-z_]+["']""")
# Klar's class-validator constraint names are the dialect's, keyed by its MESSAGES table.
NOT_OURS = ("refunds/compat/klar/",)


def test_no_module_spells_a_code_outside_backoffice_errors():
    spelled = []
    for app in ("backoffice", "sales", "refunds"):
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "backoffice/errors.py" or "/migrations/" in rel or rel.startswith(
                    NOT_OURS):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if SPELLED.search(line):
                    spelled.append(f"{rel}:{n}: {line.strip()}")
    assert spelled == []
