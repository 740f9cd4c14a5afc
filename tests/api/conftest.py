"""API fixtures: a service user with permissions, its key, clients that send it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from backoffice.models import ApiKey
from tests.factories import UserFactory

ALL_PERMS = [
    "sales.view_sale", "sales.add_sale", "sales.change_sale", "sales.cancel_sale",
    "sales.add_payment", "sales.view_payment",
    "sales.view_product", "sales.add_product", "sales.change_product",
    "sales.view_customer", "sales.add_customer", "sales.change_customer",
    "refunds.add_refund", "refunds.view_refund",
]


def grant(user, *perms: str) -> None:
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )


def make_key(user, name: str = "integration", **kwargs) -> str:
    _, key = ApiKey.objects.create_key(name=name, user=user, **kwargs)
    return key


def key_client(key: str, header: str = "bearer") -> APIClient:
    client = APIClient()
    if header == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    else:
        client.credentials(HTTP_X_API_KEY=key)
    return client


@pytest.fixture(autouse=True)
def _api_settings(settings):
    settings.API_THROTTLE_RATES = {"key": "100000/minute", "bulk": "100000/minute"}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_user(db):
    user = UserFactory(username="integration", is_staff=False)
    grant(user, *ALL_PERMS)
    return user


@pytest.fixture
def api_key(api_user) -> str:
    return make_key(api_user)


@pytest.fixture
def api(api_key) -> APIClient:
    return key_client(api_key)


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The error envelope: {"status", "error", "code", "errors"} and nothing rendered as HTML."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    if code is not None:
        assert body["code"] == code, body
        assert isinstance(body["errors"], dict)
    return body


def assert_ok(response, status: int = 200, message: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status
    assert "data" in body and "message" in body
    if message is not None:
        assert body["message"] == message
    return body["data"]
