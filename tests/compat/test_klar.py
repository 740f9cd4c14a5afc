"""Klar's refunds upload (/compat/klar/, klar-refunds-bulk.txt): validate, upsert by id,
withdraw with `[]`, status as strings; the records move the books exactly as the native
bulk records do; refusals in class-validator's error array."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from refunds.compat.klar.records import MESSAGES
from refunds.models import Refund, RefundImport
from tests.api.conftest import _api_settings, grant, key_client, make_key  # noqa: F401
from tests.factories import UserFactory
from tests.snapshot import db_state, sale_books

from .twin_sales import integration_user, twin_sale

pytestmark = pytest.mark.django_db

VERSION = "12.2022"
VALIDATE = f"/compat/klar/{VERSION}/refunds/validate"
UPLOAD = f"/compat/klar/{VERSION}/refunds/json"
STATUS = "/compat/klar/refunds/status"
KLAR_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CREATED_AT = 1763632800  # 2025-11-20T10:00:00Z


@pytest.fixture
def klar_user(db):
    return integration_user("klar-integration")


@pytest.fixture
def klar(klar_user) -> APIClient:
    return key_client(make_key(klar_user, "klar"))


def klar_sale(external_id=None):
    return twin_sale(external_id=external_id)


def refund(rid, sale, *quantities, **extra):
    """A Klar Refund object: quantities per line of the sale, in line order (0: left out)."""
    lines = list(sale.lines.order_by("pk"))
    return {"id": rid, "orderId": sale.external_id or str(sale.pk), "createdAt": CREATED_AT,
            "updatedAt": CREATED_AT + 60,
            "lineItems": [{"id": str(line.pk), "refundedQuantity": q}
                          for line, q in zip(lines, quantities, strict=False) if q],
            **extra}


def native(rid, sale, *quantities):
    """The same record in the native bulk words (POST /api/v2/refunds/json)."""
    lines = list(sale.lines.order_by("pk"))
    return {"id": rid, "order_id": sale.external_id or sale.pk,
            "refunded_at": "2025-11-20T10:00:00Z",
            "line_items": [{"item_id": line.pk, "quantity": q}
                           for line, q in zip(lines, quantities, strict=False) if q]}


def refused(response, status=400) -> list[dict]:
    assert response.status_code == status, response.content
    body = response.json()
    assert isinstance(body, list) and body, body
    return body


def nest_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"statusCode", "message", "error"} and body["statusCode"] == status
    return body


def node(entries: list[dict], *path: str) -> dict:
    """The error at `path` (record index, then properties) of Klar's error tree."""
    items = entries
    found: dict = {}
    for prop in path:
        found = next(e for e in items if e["property"] == prop)
        items = found["children"]
    return found


def test_validate_answers_valid_and_writes_nothing(klar):
    sale = klar_sale(external_id="SHOP-1001")
    before = db_state()
    response = klar.post(VALIDATE, [refund("r-1", sale, 1, 2)], format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "VALID"}
    assert db_state() == before and not RefundImport.objects.exists()


def test_upload_moves_the_books_as_the_native_bulk_import(klar):
    klar_side, native_side = klar_sale("SHOP-1"), klar_sale("SHOP-2")
    response = klar.post(UPLOAD, [refund("r-1", klar_side, 2, 1)], format="json")
    assert response.status_code == 201 and response.content == b""
    assert klar.post("/api/v2/refunds/json", [native("r-1", native_side, 2, 1)],
                     format="json").status_code == 201
    assert sale_books(klar_side) == sale_books(native_side)
    row = Refund.objects.get(sale=klar_side)
    assert (row.external_id, row.import_source) == ("r-1", "klar")
    assert row.returned_at.timestamp() == CREATED_AT

    # Sent again with other quantities: replaced; then `[]`: withdrawn. As natively.
    for klar_body, native_body in (
        ([refund("r-1", klar_side, 3, 0)], [native("r-1", native_side, 3, 0)]),
        ([refund("r-1", klar_side)], [native("r-1", native_side)]),
    ):
        assert klar.post(UPLOAD, klar_body, format="json").status_code == 201
        assert klar.post("/api/v2/refunds/json", native_body,
                         format="json").status_code == 201
        assert sale_books(klar_side) == sale_books(native_side)
    klar_side.refresh_from_db()
    assert klar_side.amount_refunded == 0 and klar_side.refunded_units == 0
    assert sum(line.refunded_quantity for line in klar_side.lines.all()) == 0


def test_klar_ids_do_not_clash_with_native_ones(klar):
    sale = klar_sale()
    assert klar.post(UPLOAD, [refund("r-1", sale, 1)], format="json").status_code == 201
    assert klar.post("/api/v2/refunds/json", [native("r-1", sale, 1)],
                     format="json").status_code == 201
    assert sorted(Refund.objects.values_list("import_source", "external_id")) == [
        ("bulk", "r-1"), ("klar", "r-1")]
    sale.refresh_from_db()
    assert sale.refunded_units == 2 == sum(line.refunded_quantity for line in sale.lines.all())


def test_status_answers_klars_keys_as_strings_for_klars_uploads_only(klar):
    sale = klar_sale()
    body = klar.get(STATUS).json()
    assert body == {"total": "0", "lastBatchCount": "0", "lastSuccess": None,
                    "lastFailure": None}
    assert klar.post(UPLOAD, [refund("r-1", sale, 1), refund("r-2", sale, 0, 1)],
                     format="json").status_code == 201
    refused(klar.post(UPLOAD, [refund("r-3", sale, 5)], format="json"))
    # A native batch counts in neither Klar's total nor its last batch.
    assert klar.post("/api/v2/refunds/json", [native("n-1", sale, 1)] * 1,
                     format="json").status_code == 201
    body = klar.get(STATUS).json()
    assert body["total"] == "2" and body["lastBatchCount"] == "1"
    assert KLAR_TIME.fullmatch(body["lastSuccess"]) and KLAR_TIME.fullmatch(body["lastFailure"])
    assert all(isinstance(v, str) for v in body.values())


def test_a_null_quantity_is_klars_isnumber_error_as_the_seed_shows(klar):
    sale = klar_sale()
    record = refund("r-1", sale, 1)
    record["lineItems"][0]["refundedQuantity"] = None
    before = db_state()
    body = refused(klar.post(VALIDATE, [refund("r-0", sale, 1), record], format="json"))
    assert [e["property"] for e in body] == ["1"]
    error = node(body, "1", "lineItems", "0", "refundedQuantity")
    assert error == {
        "target": record, "value": None, "property": "refundedQuantity", "children": [],
        "constraints": {"isNumber": "refundedQuantity must be a number conforming to the "
                                    "specified constraints"}}
    assert db_state() == before


@pytest.mark.parametrize("change,path,constraint", [
    (lambda r: r.update(orderId=None), ("orderId",), "isString"),
    (lambda r: r.pop("id"), ("id",), "isString"),
    (lambda r: r.update(createdAt=0), ("createdAt",), "min"),
    (lambda r: r.update(updatedAt="yesterday"), ("updatedAt",), "isNumber"),
    (lambda r: r.update(lineItems={"id": "1"}), ("lineItems",), "isArray"),
    (lambda r: r.pop("lineItems"), ("lineItems",), "isArray"),
    (lambda r: r["lineItems"].append("x"), ("lineItems", "2"), "nestedValidation"),
    (lambda r: r["lineItems"][0].update(refundedQuantity=1.5), ("lineItems", "0",
                                                                "refundedQuantity"), "isInt"),
    (lambda r: r["lineItems"][0].update(refundedQuantity=0), ("lineItems", "0",
                                                              "refundedQuantity"), "min"),
    (lambda r: r["lineItems"][0].update(id="line-1"), ("lineItems", "0", "id"),
     "isNumberString"),
])
def test_type_errors_carry_class_validators_constraints(klar, change, path, constraint):
    sale = klar_sale()
    record = refund("r-1", sale, 1, 1)
    change(record)
    before = db_state()
    body = refused(klar.post(UPLOAD, [record], format="json"))
    error = node(body, "0", *path)
    assert list(error["constraints"]) == [constraint]
    name = path[-2] if path[-1].isdigit() else path[-1]
    template = MESSAGES[constraint].replace("{n}", "N")
    message = re.sub(r"\d+", "N", error["constraints"][constraint])
    assert message == template.format(p=name)
    assert error["target"] == record
    assert db_state() == before


def test_unknown_keys_are_refused_as_klars_whitelist_validation(klar):
    sale = klar_sale()
    record = refund("r-1", sale, 1, refundedAmount=1200)
    record["lineItems"][0]["price"] = 1200
    before = db_state()
    body = refused(klar.post(VALIDATE, [record], format="json"))
    assert node(body, "0", "refundedAmount") == {
        "target": record, "value": 1200, "property": "refundedAmount", "children": [],
        "constraints": {"whitelistValidation": "property refundedAmount should not exist"}}
    assert node(body, "0", "lineItems", "0", "price")["constraints"] == {
        "whitelistValidation": "property price should not exist"}
    assert db_state() == before


def test_the_services_refusals_point_at_the_property(klar):
    sale = klar_sale("SHOP-9")
    records = [
        refund("r-1", sale, 2),
        refund("r-2", sale, 2),  # r-1 took 2 of 3: only 1 left
        {**refund("r-3", sale, 1), "orderId": "NO-SUCH-ORDER"},
        {**refund("r-4", sale, 1), "lineItems": [{"id": "99999999", "refundedQuantity": 1}]},
    ]
    before = db_state()
    body = refused(klar.post(UPLOAD, records, format="json"))
    assert [e["property"] for e in body] == ["1", "2", "3"]  # r-1 alone was fine
    assert node(body, "1", "lineItems", "0", "refundedQuantity")["constraints"] == {
        "refundableQuantity": "only 1 left to refund"}
    assert node(body, "1", "lineItems", "0", "refundedQuantity")["value"] == 2
    assert list(node(body, "2", "orderId")["constraints"]) == ["orderExists"]
    assert node(body, "2", "orderId")["value"] == "NO-SUCH-ORDER"
    assert list(node(body, "3", "lineItems", "0", "id")["constraints"]) == ["lineItemExists"]
    assert db_state() == before  # all or nothing
    failure = RefundImport.objects.get()
    assert (failure.source, failure.outcome, failure.count) == ("klar", "failure", 4)


def test_a_batch_klar_refuses_is_recorded_as_a_failure(klar):
    refused(klar.post(UPLOAD, [{"id": "r-1"}], format="json"))
    failure = RefundImport.objects.get()
    assert (failure.source, failure.outcome, failure.count) == ("klar", "failure", 1)
    assert failure.errors[0]["index"] == 0 and "lineItems" in failure.errors[0]["errors"]
    refused(klar.post(VALIDATE, [{"id": "r-1"}], format="json"))
    assert RefundImport.objects.count() == 1  # validate is not an upload
    nest_error(klar.post(UPLOAD, {"id": "r-1"}, format="json"), 400)
    assert RefundImport.objects.filter(outcome="failure", count=0).count() == 1
    assert klar.get(STATUS).json()["lastBatchCount"] == "0"


def test_more_than_1000_records_is_a_413(klar):
    sale = klar_sale()
    body = nest_error(klar.post(UPLOAD, [refund(f"r-{i}", sale, 1) for i in range(1001)],
                                format="json"), 413)
    assert "1000" in body["message"] and body["error"] == "Request Entity Too Large"
    assert not Refund.objects.exists()


@pytest.mark.parametrize("body", [{"id": "r-1"}, None, "x"])
def test_a_body_that_is_not_an_array_is_a_400(klar, body):
    response = klar.post(VALIDATE, body, format="json")
    assert nest_error(response, 400)["message"].startswith("Send a JSON array")


def test_a_bad_key_is_a_401_and_a_missing_permission_a_403(db):
    sale = klar_sale()
    assert nest_error(key_client("nope.nothing").post(VALIDATE, [refund("r", sale, 1)],
                                                      format="json"), 401)["error"] == \
        "Unauthorized"
    reader = UserFactory(username="reader", is_staff=False)
    grant(reader, "refunds.view_refund")
    client = key_client(make_key(reader, "reader"))
    nest_error(client.post(UPLOAD, [], format="json"), 403)
    assert client.get(STATUS).status_code == 200


@pytest.mark.parametrize("version,found", [
    ("12.2022", True), ("03.2024", True), ("11.2022", False), ("2022.12", False),
    ("13.2023", False), ("v1", False),
])
def test_versions_are_klars_month_and_year_from_12_2022(klar, version, found):
    response = klar.post(f"/compat/klar/{version}/refunds/validate", [], format="json")
    if found:
        assert response.status_code == 200 and response.json() == {"status": "VALID"}
    else:
        assert "Unknown API version" in nest_error(response, 404)["message"]


def test_an_unknown_query_parameter_is_refused(klar):
    body = nest_error(klar.get(STATUS + "?since=2025"), 400)
    assert "since" in body["message"]
    assert nest_error(klar.post(UPLOAD + "?dry_run=1", [], format="json"), 400)
    assert not RefundImport.objects.exists()


def test_an_upload_costs_the_same_queries_for_10_or_200_records(
        klar, postgres, django_assert_max_num_queries):
    """On PostgreSQL (production): SQLite's 999-parameter limit splits bulk inserts into
    batches, so there the count grows with the rows by design."""
    sales = [klar_sale() for _ in range(4)]
    small = [refund(f"s-{i}", sales[i % 4], 0, 1) for i in range(4)]
    with django_assert_max_num_queries(30) as ten:
        assert klar.post(UPLOAD, small, format="json").status_code == 201
    many = [refund(f"m-{i}", klar_sale(), 1, 1) for i in range(200)]
    with django_assert_max_num_queries(len(ten.captured_queries) + 2):
        assert klar.post(UPLOAD, many, format="json").status_code == 201
    assert Refund.objects.filter(import_source="klar", withdrawn_at=None).count() == 204


def test_the_schema_documents_klar_under_its_own_tag(db):
    spec = APIClient().get("/api/v2/schema/?format=json").json()
    paths = spec["paths"]
    for path, method in [("/compat/klar/{version}/refunds/validate", "post"),
                         ("/compat/klar/{version}/refunds/json", "post"),
                         ("/compat/klar/refunds/status", "get")]:
        assert paths[path][method]["tags"] == ["Dialect: Klar refunds"], path
    upload = paths["/compat/klar/{version}/refunds/json"]["post"]
    assert "content" not in upload["responses"]["201"]
    assert "413" in upload["responses"]
    record = spec["components"]["schemas"]["KlarRefundRequest"]
    assert record["additionalProperties"] is False
    assert set(record["properties"]) == {"id", "orderId", "createdAt", "updatedAt",
                                         "lineItems"}
