"""Admin fixtures: a client per role (the groups made by refunds.services.roles)."""

from __future__ import annotations

import pytest
from django.test import Client

from refunds.services.roles import REFUND_CLERKS, SUPERVISORS, roles_ensure
from tests.factories import UserFactory


def _user_in(group_name: str | None, username: str):
    groups = roles_ensure()
    user = UserFactory(username=username)
    if group_name:
        user.groups.add(groups[group_name])
    return user


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def clerk(db):
    return _user_in(REFUND_CLERKS, "clerk")


@pytest.fixture
def supervisor(db):
    return _user_in(SUPERVISORS, "supervisor")


@pytest.fixture
def viewer(db):
    """Staff who may look at sales but neither refund nor cancel."""
    from django.contrib.auth.models import Permission

    user = _user_in(None, "viewer")
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="sales", codename__in=["view_sale", "view_order"]))
    return user


@pytest.fixture
def clerk_client(clerk):
    return _client_for(clerk)


@pytest.fixture
def supervisor_client(supervisor):
    return _client_for(supervisor)


@pytest.fixture
def viewer_client(viewer):
    return _client_for(viewer)


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Pages render {% static %}: without collectstatic, the manifest storage (DEBUG off,
    as on PostgreSQL runs) has no entries; the plain storage needs none."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
