"""Login, refresh rotation with reuse detection, logout of one or every session, throttles and lockout."""

import pytest
from django.test import override_settings

from accounts.tests.factories import PASSWORD, UserFactory
from conftest import bearer

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
ME = "/api/v1/auth/current-user/"


def login(client, email, password=PASSWORD, **extra):
    return client.post(LOGIN, {"email": email, "password": password}, **extra)


def tokens_for(client, user):
    response = login(client, user.email)
    assert response.status_code == 200, response.json()
    return response.json()["tokens"]


def me(client, access):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")


def test_login_answers_the_user_and_a_token_pair(api_client, user):
    response = login(api_client, "PATIENT@example.org")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == str(user.pk)
    assert body["user"]["profile"]["timezone"] == "UTC"
    assert me(api_client, body["tokens"]["access"]).status_code == 200
    user.refresh_from_db()
    assert user.last_login is not None


@pytest.mark.parametrize("email", ["patient@example.org", "nobody@example.org"])
def test_bad_credentials_are_401(api_client, user, email):
    response = login(api_client, email, password="wrong-password-123")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "invalid_credentials"


def test_an_inactive_user_cannot_log_in(api_client):
    UserFactory(email="gone@example.org", is_active=False)
    assert login(api_client, "gone@example.org").status_code == 401


def test_refresh_rotates_and_the_spent_token_is_refused(api_client, user):
    tokens = tokens_for(api_client, user)
    rotated = api_client.post(REFRESH, {"refresh": tokens["refresh"]})
    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != tokens["refresh"]
    assert me(api_client, rotated.json()["access"]).status_code == 200
    reused = api_client.post(REFRESH, {"refresh": tokens["refresh"]})
    assert reused.status_code == 401


def test_reusing_a_spent_refresh_token_ends_every_session(api_client, user):
    phone = tokens_for(api_client, user)
    laptop = tokens_for(api_client, user)
    rotated = api_client.post(REFRESH, {"refresh": phone["refresh"]}).json()
    assert api_client.post(REFRESH, {"refresh": phone["refresh"]}).status_code == 401  # the replay
    # Every session of the user is over, including the thief's fresh pair and the other device.
    assert api_client.post(REFRESH, {"refresh": rotated["refresh"]}).status_code == 401
    assert api_client.post(REFRESH, {"refresh": laptop["refresh"]}).status_code == 401
    assert me(api_client, rotated["access"]).status_code == 401
    assert me(api_client, laptop["access"]).status_code == 401
    assert tokens_for(api_client, user)  # signing in again works


def test_an_access_token_is_not_a_refresh_token(api_client, user):
    tokens = tokens_for(api_client, user)
    assert api_client.post(REFRESH, {"refresh": tokens["access"]}).status_code == 401


def test_a_garbled_refresh_token_is_401(api_client):
    assert api_client.post(REFRESH, {"refresh": "garbage"}).status_code == 401


def test_logout_with_a_refresh_token_ends_only_that_session(api_client, user):
    phone = tokens_for(api_client, user)
    laptop = tokens_for(api_client, user)
    response = api_client.post(LOGOUT, {"refresh": phone["refresh"]}, HTTP_AUTHORIZATION=f"Bearer {phone['access']}")
    assert response.status_code == 205
    assert api_client.post(REFRESH, {"refresh": phone["refresh"]}).status_code == 401
    still = api_client.post(REFRESH, {"refresh": laptop["refresh"]})
    assert still.status_code == 200, still.json()


def test_logout_with_an_empty_body_ends_every_session(api_client, user):
    phone = tokens_for(api_client, user)
    laptop = tokens_for(api_client, user)
    response = api_client.post(LOGOUT, {}, HTTP_AUTHORIZATION=f"Bearer {phone['access']}")
    assert response.status_code == 205
    assert api_client.post(REFRESH, {"refresh": phone["refresh"]}).status_code == 401
    assert api_client.post(REFRESH, {"refresh": laptop["refresh"]}).status_code == 401
    assert me(api_client, laptop["access"]).status_code == 401


def test_logout_refuses_someone_elses_refresh_token(api_client, user, other_user):
    mine = tokens_for(api_client, user)
    theirs = tokens_for(api_client, other_user)
    response = api_client.post(LOGOUT, {"refresh": theirs["refresh"]}, HTTP_AUTHORIZATION=f"Bearer {mine['access']}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "refresh"
    assert api_client.post(REFRESH, {"refresh": theirs["refresh"]}).status_code == 200


def test_logout_needs_authentication(api_client):
    assert api_client.post(LOGOUT, {}).status_code == 401


def test_a_missing_or_broken_bearer_token_is_401(api_client):
    assert api_client.get(ME).status_code == 401
    assert api_client.get(ME, HTTP_AUTHORIZATION="Bearer not-a-jwt").status_code == 401


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_failures_lock_the_account_and_address_out(api_client, user):
    for _ in range(2):
        assert login(api_client, user.email, password="wrong-password-123").status_code == 401
    locked = login(api_client, user.email, password="wrong-password-123")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert locked.json()["errors"][0]["code"] == "locked_out"
    # Even the right password is refused while locked out...
    assert login(api_client, user.email).status_code == 429
    # ...but only for that account and address together.
    assert login(api_client, user.email, REMOTE_ADDR="10.1.2.3").status_code == 200


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_successful_login_resets_the_failure_count(api_client, user):
    for _ in range(2):
        login(api_client, user.email, password="wrong-password-123")
    assert login(api_client, user.email).status_code == 200
    for _ in range(2):
        assert login(api_client, user.email, password="wrong-password-123").status_code == 401


@override_settings(AUTH_THROTTLE_RATES={"auth_ip": "3/min", "auth_account": "100/min"})
def test_login_is_throttled_per_address(api_client):
    for n in range(3):
        UserFactory(email=f"p{n}@example.org")
        assert login(api_client, f"p{n}@example.org").status_code == 200
    throttled = login(api_client, "p0@example.org")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert login(api_client, "p0@example.org", REMOTE_ADDR="10.9.9.9").status_code == 200


@override_settings(AUTH_THROTTLE_RATES={"auth_ip": "100/min", "auth_account": "2/min"})
def test_login_is_throttled_per_account_across_addresses(api_client, user):
    assert login(api_client, user.email, REMOTE_ADDR="10.0.0.1").status_code == 200
    assert login(api_client, user.email, REMOTE_ADDR="10.0.0.2").status_code == 200
    assert login(api_client, user.email, REMOTE_ADDR="10.0.0.3").status_code == 429
    UserFactory(email="someone@example.org")
    assert login(api_client, "someone@example.org", REMOTE_ADDR="10.0.0.3").status_code == 200


@override_settings(AUTH_THROTTLE_RATES={"auth_ip": "2/min", "auth_account": "100/min"})
def test_registration_and_reset_are_throttled_too(api_client):
    for _ in range(2):
        api_client.post("/api/v1/auth/password/reset/", {"email": "x@example.org"})
    assert api_client.post("/api/v1/auth/password/reset/", {"email": "x@example.org"}).status_code == 429
    body = {"email": "r@example.org", "password": "a-Long-passphrase-77", "password_confirm": "a-Long-passphrase-77"}
    for _ in range(2):
        api_client.post("/api/v1/auth/register/", body)
    assert api_client.post("/api/v1/auth/register/", body).status_code == 429


def test_current_user_has_the_shape_mobile_clients_read(api_client, user):
    response = bearer(api_client, user).get(ME)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "email", "authUser", "userProfile", "role"}
    assert body["id"] == str(user.pk)
    assert body["email"] == user.email
    assert body["authUser"]["email"] == user.email
    assert body["userProfile"]["timezone"] == "UTC"
    assert body["role"]["name"] == "patient"
    assert "care_team.manage" in body["role"]["permissions"]
