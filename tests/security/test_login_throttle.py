"""Issue 15, defect 6: 100 wrong passwords in a row, then the right one logged in (both login pages)."""

from __future__ import annotations

import pytest
from django.test import Client

from umbra_testkit import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_a_hundred_wrong_passwords_lock_the_account_for_that_client(url, make_user, settings):
    user = make_user("victim", is_staff=True, is_superuser=True)
    client = Client()
    statuses = [client.post(url, {"username": user.username, "password": f"wrong-{i}"}).status_code for i in range(100)]
    limit = settings.AXES_FAILURE_LIMIT
    assert statuses[: limit - 1] == [200] * (limit - 1)  # the login form again, with its error
    assert set(statuses[limit:]) == {429}
    right = client.post(url, {"username": user.username, "password": PASSWORD})
    assert right.status_code == 429 and "Too many failed logins" in right.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address is not locked out with it (no one can lock a user out of every network).
    other = Client(REMOTE_ADDR="10.9.8.7")
    assert other.post(url, {"username": user.username, "password": PASSWORD}).status_code == 302


def test_a_right_password_before_the_limit_resets_the_count(make_user, settings):
    user = make_user("forgetful")
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/accounts/login/", {"username": user.username, "password": f"wrong-{i}"})
    assert client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    client.logout()
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/accounts/login/", {"username": user.username, "password": f"x{i}"}).status_code == 200
