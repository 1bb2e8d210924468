"""Login, refresh rotation with reuse detection, logout of one or every session, throttles and lockout."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import F
from django.test import RequestFactory, override_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.authentication import JWTAuthentication
from accounts.models import AuthSession, IssuedRefreshToken
from accounts.tests.factories import PASSWORD, UserFactory
from accounts.tests.plaintext import tables_holding
from accounts.tokens import issue_tokens
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


def past_the_grace_window(user):
    """Move every spend of the user's back beyond the grace window: the same as waiting it out."""
    IssuedRefreshToken.objects.filter(session__user=user, spent_at__isnull=False).update(
        spent_at=F("spent_at") - timedelta(seconds=settings.JWT_REFRESH_GRACE_SECONDS + 1)
    )


def test_refresh_rotates_and_the_spent_token_is_refused_after_the_grace_window(api_client, user):
    tokens = tokens_for(api_client, user)
    rotated = api_client.post(REFRESH, {"refresh": tokens["refresh"]})
    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != tokens["refresh"]
    assert me(api_client, rotated.json()["access"]).status_code == 200
    past_the_grace_window(user)
    reused = api_client.post(REFRESH, {"refresh": tokens["refresh"]})
    assert reused.status_code == 401
    assert reused.json()["errors"][0]["code"] == "token_reused"


def test_a_retry_within_the_grace_window_answers_the_same_pair(api_client, user):
    tokens = tokens_for(api_client, user)
    first = api_client.post(REFRESH, {"refresh": tokens["refresh"]}).json()
    retry = api_client.post(REFRESH, {"refresh": tokens["refresh"]})  # the app lost the first answer
    assert retry.status_code == 200
    assert retry.json() == first  # byte for byte: access and refresh
    assert me(api_client, first["access"]).status_code == 200
    assert api_client.post(REFRESH, {"refresh": first["refresh"]}).status_code == 200  # it rotates on
    assert IssuedRefreshToken.objects.filter(session__user=user).count() == 3  # one chain: no second family


def test_a_retry_after_the_new_pair_was_used_is_reuse(api_client, user):
    tokens = tokens_for(api_client, user)
    first = api_client.post(REFRESH, {"refresh": tokens["refresh"]}).json()
    second = api_client.post(REFRESH, {"refresh": first["refresh"]}).json()
    # Whoever got the pair used it; whoever sends the old token now is someone else.
    replay = api_client.post(REFRESH, {"refresh": tokens["refresh"]})
    assert replay.status_code == 401
    assert me(api_client, second["access"]).status_code == 401


def test_reusing_a_spent_refresh_token_ends_every_session(api_client, user):
    phone = tokens_for(api_client, user)
    laptop = tokens_for(api_client, user)
    rotated = api_client.post(REFRESH, {"refresh": phone["refresh"]}).json()
    past_the_grace_window(user)
    assert api_client.post(REFRESH, {"refresh": phone["refresh"]}).status_code == 401  # the replay
    # Every session of the user is over, including the thief's fresh pair and the other device.
    assert api_client.post(REFRESH, {"refresh": rotated["refresh"]}).status_code == 401
    assert api_client.post(REFRESH, {"refresh": laptop["refresh"]}).status_code == 401
    assert me(api_client, rotated["access"]).status_code == 401
    assert me(api_client, laptop["access"]).status_code == 401
    assert set(AuthSession.objects.filter(user=user).values_list("end_reason", flat=True)) == {"token_reuse"}
    assert tokens_for(api_client, user)  # signing in again works


def test_a_spent_token_of_a_logged_out_session_is_only_refused(api_client, user):
    phone = tokens_for(api_client, user)
    laptop = tokens_for(api_client, user)
    rotated = api_client.post(REFRESH, {"refresh": phone["refresh"]}).json()
    api_client.post(LOGOUT, {"refresh": rotated["refresh"]}, HTTP_AUTHORIZATION=f"Bearer {rotated['access']}")
    past_the_grace_window(user)
    replay = api_client.post(REFRESH, {"refresh": phone["refresh"]})
    assert replay.status_code == 401
    assert replay.json()["errors"][0]["code"] == "session_ended"
    assert me(api_client, laptop["access"]).status_code == 200  # nothing more to end: the laptop stays


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
    assert me(api_client, phone["access"]).status_code == 401  # at once, not when it expires
    assert me(api_client, laptop["access"]).status_code == 200
    still = api_client.post(REFRESH, {"refresh": laptop["refresh"]})
    assert still.status_code == 200, still.json()


def test_logout_ends_the_access_tokens_of_every_rotation_of_that_session(api_client, user):
    tokens = tokens_for(api_client, user)
    rotated = api_client.post(REFRESH, {"refresh": tokens["refresh"]}).json()
    response = api_client.post(LOGOUT, {"refresh": rotated["refresh"]}, HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert response.status_code == 205
    assert me(api_client, tokens["access"]).status_code == 401
    assert me(api_client, rotated["access"]).status_code == 401


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


def test_an_access_token_without_a_session_is_401(api_client, user):
    # What SimpleJWT alone makes (and what this app issued before sessions): the app refreshes instead.
    response = me(api_client, str(AccessToken.for_user(user)))
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "session_ended"


def test_authentication_costs_one_query(user, django_assert_num_queries):
    access = issue_tokens(user)["access"]
    request = RequestFactory().get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")
    with django_assert_num_queries(1):  # the session joined with its user, instead of the user alone
        authenticated, _ = JWTAuthentication().authenticate(request)
    assert authenticated == user


def test_no_token_is_stored_in_any_table(api_client, user):
    phone = tokens_for(api_client, user)
    laptop = tokens_for(api_client, user)
    rotated = api_client.post(REFRESH, {"refresh": phone["refresh"]}).json()
    retried = api_client.post(REFRESH, {"refresh": phone["refresh"]}).json()
    api_client.post(LOGOUT, {"refresh": laptop["refresh"]}, HTTP_AUTHORIZATION=f"Bearer {laptop['access']}")
    issued = [phone, laptop, rotated, retried]
    secrets = {part for pair in issued for token in pair.values() for part in (token, token.rsplit(".", 1)[1])}
    stored = IssuedRefreshToken.objects.filter(session__user=user)

    assert stored.count() == 3  # the phone's two and the laptop's one
    assert tables_holding(stored.first().token_hash) == ["accounts_issuedrefreshtoken"]  # the scan finds things
    for secret in secrets:
        assert tables_holding(secret) == [], secret


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
