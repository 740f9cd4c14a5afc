"""Dialect fixtures. Each dialect's are named after it (keepup_*, nuweb_*, …)."""

from __future__ import annotations

import pytest

from tests.api.conftest import ALL_PERMS, grant, key_client, make_key
from tests.factories import UserFactory


def integration_key(name: str) -> str:
    """A key of a service user holding the API's permissions (as tests/api's `api_key`)."""
    user = UserFactory(username=f"{name}-integration", is_staff=False)
    grant(user, *ALL_PERMS)
    return make_key(user, name=name)


@pytest.fixture
def keepup_key(db) -> str:
    return integration_key("keepup")


@pytest.fixture
def keepup_api(keepup_key):
    return key_client(keepup_key)


@pytest.fixture
def nuweb_key(db) -> str:
    return integration_key("nuweb")


@pytest.fixture
def nuweb_api(nuweb_key):
    return key_client(nuweb_key)
