"""A key made in the admin is shown once, in the page that answers the save: never in
the messages cookie or the session."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backoffice.models import ApiKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_new_key_is_shown_once_and_never_stored_in_a_cookie(admin_client):
    user = UserFactory(username="shop-integration", is_staff=False)
    response = admin_client.post(reverse("admin:backoffice_apikey_add"), {
        "name": "marketplace", "user": user.pk, "expiry_date_0": "", "expiry_date_1": "",
    })
    assert response.status_code == 200, response.content[:500]
    key_obj = ApiKey.objects.get(name="marketplace")
    page = response.content.decode()
    start = page.index('id="api-key">') + len('id="api-key">')
    key = page[start:page.index("</code>", start)]
    assert key.startswith(key_obj.prefix + ".")
    assert ApiKey.objects.is_valid(key)
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    for morsel in response.cookies.values():
        assert key not in morsel.value and key_obj.prefix not in morsel.value
    assert key not in str(dict(admin_client.session))
    # The next page has no message carrying it either.
    following = admin_client.get(reverse("admin:backoffice_apikey_changelist"))
    assert key not in following.content.decode()
