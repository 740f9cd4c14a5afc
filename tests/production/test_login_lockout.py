"""Failed-login lockout on the admin login (django-axes)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def staff(db):
    return UserFactory(username="clerk", is_staff=True, is_superuser=True)


def _login(client, password, username="clerk"):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
    )


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_right_password_logs_in(client, staff):
    response = _login(client, PASSWORD)
    assert response.status_code == 302
    assert _logged_in(client)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_after_n_failed_logins_even_the_right_password_is_refused(client, staff):
    for _ in range(2):
        response = _login(client, "wrong-password")
        assert response.status_code == 200  # the login form again, with its error
    response = _login(client, "wrong-password")  # the 3rd failure locks
    assert response.status_code == 429

    response = _login(client, PASSWORD)
    assert response.status_code == 429
    assert b"locked" in response.content.lower()
    assert not _logged_in(client)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_lockout_does_not_lock_out_other_staff(client, staff):
    UserFactory(username="manager", is_staff=True, is_superuser=True)
    for _ in range(3):
        _login(client, "wrong-password")
    assert _login(client, PASSWORD).status_code == 429

    response = _login(client, PASSWORD, username="manager")
    assert response.status_code == 302
    assert _logged_in(client)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_successful_login_resets_the_count(client, staff):
    for _ in range(2):
        _login(client, "wrong-password")
    assert _login(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        _login(client, "wrong-password")
    assert _login(client, PASSWORD).status_code == 302


def test_the_default_limit_is_five_failures(client, staff, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert _login(client, "wrong-password").status_code == 200
    assert _login(client, "wrong-password").status_code == 429
    assert _login(client, PASSWORD).status_code == 429


def test_test_client_login_and_force_login_still_work(client, staff):
    """Axes needs a request to count failures; the test client's login() has none, and
    must keep working for the rest of the suite."""
    assert client.login(username="clerk", password=PASSWORD)
    assert client.get(reverse("admin:index")).status_code == 200
    client.logout()
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200


def test_behind_a_proxy_failures_are_counted_per_client_address(client, staff, settings):
    from axes.models import AccessAttempt

    settings.TRUSTED_PROXY_COUNT = 1
    client.post(
        reverse("admin:login"),
        {"username": "clerk", "password": "wrong"},
        HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.9",
    )
    attempt = AccessAttempt.objects.get()
    assert attempt.ip_address == "203.0.113.9"  # the one the trusted proxy appended


@override_settings(AXES_FAILURE_LIMIT=3, TRUSTED_PROXY_COUNT=1)
def test_behind_the_proxy_a_spoofed_header_locks_only_the_spoofer(client, staff):
    """The documented deployment (nginx appends the client's address; production's
    TRUSTED_PROXY_COUNT is 1): failures from one client, whatever it writes in its own
    X-Forwarded-For, lock that client out, never the staff member at another address."""
    for spoof in ("198.51.100.7", "10.0.0.1", "198.51.100.7, 10.0.0.2"):
        _login_via_proxy(client, "wrong", f"{spoof}, 203.0.113.9")
    assert _login_via_proxy(client, PASSWORD, "198.51.100.7, 203.0.113.9").status_code == 429
    response = _login_via_proxy(client, PASSWORD, "198.51.100.7")
    assert response.status_code == 302
    assert _logged_in(client)


def _login_via_proxy(client, password, forwarded_for):
    return client.post(
        reverse("admin:login"),
        {"username": "clerk", "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for,
    )
