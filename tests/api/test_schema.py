"""OpenAPI: served offline, complete, and fuzzed by schemathesis against the WSGI app."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from backoffice.wsgi import application
from tests.factories import ProductFactory, SaleFactory

from .conftest import make_key


def test_schema_is_served_and_complete(db):
    response = APIClient().get("/api/v2/schema/?format=json")
    assert response.status_code == 200
    spec = response.json()
    paths = spec["paths"]
    for path in ["/api/v2/sales/", "/api/v2/sales/{ident}/", "/api/v2/sales/balance/{ident}",
                 "/api/v2/sales/cancel/{ident}", "/api/v2/sales/refund/{ident}",
                 "/api/v2/sales/{ident}/refunds/", "/api/v2/sales/{ident}/refunds/preview/",
                 "/api/v2/orders/refund", "/api/v2/refunds/", "/api/v2/refunds/{id}/",
                 "/api/v2/refunds/validate", "/api/v2/refunds/json", "/api/v2/refunds/status",
                 "/api/v2/products/", "/api/v2/customers/{id}/"]:
        assert path in paths, path
    refund = paths["/api/v2/sales/{ident}/refunds/"]["post"]
    assert "requestBody" in refund
    assert {"201", "400", "401", "403", "404", "409", "422", "429", "500"} <= set(
        refund["responses"])
    envelope = refund["responses"]["201"]["content"]["application/json"]["schema"]
    assert set(envelope["properties"]) == {"status", "message", "data"}
    assert "413" in paths["/api/v2/refunds/json"]["post"]["responses"]
    assert set(spec["components"]["securitySchemes"]) >= {"BearerKey", "HeaderKey"}


def test_docs_are_served_without_a_cdn(client):
    response = client.get("/api/v2/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assert "/static/drf_spectacular_sidecar/" in html


schema = schemathesis.openapi.from_wsgi("/api/v2/schema/?format=json", application)

# Generated examples per operation (beyond the schema's own examples and the coverage
# phase's edge cases): SCHEMATHESIS_EXAMPLES, else 25 in CI and 4 locally. Derandomized:
# the same cases on every run, so a failure reproduces.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES") or (25 if os.environ.get("CI") else 4))


@pytest.fixture
def _wsgi_keeps_the_test_connection():
    """Calls go through the real WSGI handler, which closes "obsolete" connections at
    each request's start and end: inside the test's transaction that would drop it
    (Django's own test client disconnects the same handler)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_key(db, _wsgi_keeps_the_test_connection):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(username="fuzzer", is_superuser=True)
    SaleFactory(external_id="WEB-1", lines=[(3, 1200), (1, 500)], with_customer=False)
    ProductFactory()
    return make_key(user)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_api_conforms_to_its_schema(case, fuzz_key):
    """No 5xx, and every response matches the schema documented for its status."""
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )


@pytest.fixture
def reader_key(db, _wsgi_keeps_the_test_connection):
    """A caller who may read sales but not customers: its documents name customers by id
    only, and must still match the schema."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create(username="reader")
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["sales", "refunds"], codename__startswith="view_",
    ).exclude(codename="view_customer"))
    SaleFactory(external_id="WEB-2", lines=[(2, 700)])
    return make_key(user)


@schema.include(method="GET").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_reads_without_view_customer_conform_to_the_schema(case, reader_key):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {reader_key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
