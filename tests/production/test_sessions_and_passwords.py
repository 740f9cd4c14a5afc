"""Staff sessions end after SESSION_COOKIE_AGE seconds without a request (and when the
browser closes); passwords go through Django's validators."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.utils import timezone


@pytest.mark.django_db
def test_each_request_moves_the_idle_timeout_on(client, staff_user, settings):
    client.force_login(staff_user)
    Session.objects.update(expire_date=timezone.now() + timedelta(minutes=1))

    response = client.get("/admin/")
    assert response.status_code == 200
    expire = Session.objects.get().expire_date
    age = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert timezone.now() + age - timedelta(minutes=1) < expire <= timezone.now() + age
    # Still a browser-session cookie: closing the browser logs out.
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == "" and cookie["expires"] == ""


@pytest.mark.django_db
def test_a_session_idle_for_longer_than_its_age_is_logged_out(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/admin/").status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def _codes(password: str, user=None) -> set[str]:
    with pytest.raises(ValidationError) as refused:
        validate_password(password, user=user)
    return {error.code for error in refused.value.error_list}


def test_short_common_numeric_and_look_alike_passwords_are_refused():
    assert {"password_too_short", "password_too_common"} <= _codes("abc123")
    assert "password_too_common" in _codes("password123")
    assert "password_entirely_numeric" in _codes("8405729163")
    clerk = User(username="margaret.clerk", email="margaret.clerk@example.com")
    assert "password_too_similar" in _codes("margaret.clerk", user=clerk)
    assert validate_password("plover-kettle-93-window", user=clerk) is None
