import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User
from accounts.tests.factories import PASSWORD
from conftest import bearer

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-Strong-secret-42"


def login(client, user, password=PASSWORD):
    return client.post("/api/v1/auth/login/", {"email": user.email, "password": password})


def test_change_password_ends_other_sessions_and_keeps_this_one(api_client, user):
    other_device = login(api_client, user).json()["tokens"]
    this_device = login(api_client, user).json()["tokens"]
    response = api_client.post(
        "/api/v1/auth/change-password/",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
        HTTP_AUTHORIZATION=f"Bearer {this_device['access']}",
    )
    assert response.status_code == 200, response.json()
    fresh = response.json()["tokens"]
    assert (
        api_client.get("/api/v1/auth/current-user/", HTTP_AUTHORIZATION=f"Bearer {fresh['access']}").status_code == 200
    )
    assert api_client.post("/api/v1/auth/token/refresh/", {"refresh": fresh["refresh"]}).status_code == 200
    assert api_client.post("/api/v1/auth/token/refresh/", {"refresh": other_device["refresh"]}).status_code == 401
    other_access = f"Bearer {other_device['access']}"
    assert api_client.get("/api/v1/auth/current-user/", HTTP_AUTHORIZATION=other_access).status_code == 401
    assert login(api_client, user).status_code == 401
    assert login(api_client, user, NEW_PASSWORD).status_code == 200


def test_change_password_with_the_wrong_current_password_is_400(api_client, user):
    response = bearer(api_client, user).post(
        "/api/v1/auth/change-password/",
        {"old_password": "not-it-at-all", "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "old_password"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_change_password_refuses_a_weak_one(api_client, user):
    response = bearer(api_client, user).post(
        "/api/v1/auth/change-password/",
        {"old_password": PASSWORD, "new_password": "12345", "new_password_confirm": "12345"},
    )
    assert response.status_code == 400
    assert {e["attr"] for e in response.json()["errors"]} == {"new_password"}


def reset_link(outbox_message):
    uid = re.search(r"uid=([\w-]+)", outbox_message.body).group(1)
    token = re.search(r"token=([\w-]+)", outbox_message.body).group(1)
    return uid, token


def test_password_reset_by_emailed_token(api_client, user, django_capture_on_commit_callbacks):
    session = login(api_client, user).json()["tokens"]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/auth/password/reset/", {"email": "Patient@Example.org"})
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    uid, token = reset_link(mail.outbox[0])
    body = {"uid": uid, "token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    confirmed = api_client.post("/api/v1/auth/password/reset/confirm/", body)
    assert confirmed.status_code == 200, confirmed.json()
    assert login(api_client, user, NEW_PASSWORD).status_code == 200
    # Every earlier session ended, and the token worked once only.
    assert api_client.post("/api/v1/auth/token/refresh/", {"refresh": session["refresh"]}).status_code == 401
    body["new_password"] = body["new_password_confirm"] = "a-Third-password-99"
    again = api_client.post("/api/v1/auth/password/reset/confirm/", body)
    assert again.status_code == 400
    assert again.json()["errors"][0]["attr"] == "token"


def test_password_reset_for_an_unknown_address_answers_the_same_and_sends_nothing(
    api_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/auth/password/reset/", {"email": "nobody@example.org"})
    assert response.status_code == 200
    assert mail.outbox == []


def test_an_expired_reset_token_is_refused(api_client, user, settings):
    class TwoHoursAgo(PasswordResetTokenGenerator):
        def _now(self):
            return datetime.now() - timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60)  # noqa: DTZ005

    token = TwoHoursAgo().make_token(user)
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    response = api_client.post(
        "/api/v1/auth/password/reset/confirm/",
        {"uid": uid, "token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "token"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("uid", ["garbage", "", "MTIz"])
def test_a_garbled_reset_uid_is_400(api_client, uid):
    body = {"uid": uid, "token": "x-y", "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    assert api_client.post("/api/v1/auth/password/reset/confirm/", body).status_code == 400


def test_profile_shows_the_user_and_medical_profile(api_client, user):
    response = bearer(api_client, user).get("/api/v1/auth/profile/")
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == user.email
    assert set(body["profile"]) >= {
        "date_of_birth",
        "sex",
        "height_cm",
        "blood_type",
        "conditions",
        "allergies",
        "timezone",
        "preferred_units",
        "emergency_contacts",
    }


def test_profile_patch_changes_profile_and_replaces_emergency_contacts(api_client, user):
    client = bearer(api_client, user)
    first = {"name": "Ann", "relation": "sister", "phone": "+1 555 0101", "email": "ann@example.org"}
    client.patch("/api/v1/auth/profile/", {"profile": {"emergency_contacts": [first]}})
    response = client.patch(
        "/api/v1/auth/profile/",
        {
            "first_name": "Pat",
            "profile": {
                "timezone": "Asia/Tokyo",
                "blood_type": "O-",
                "allergies": ["Latex"],
                "preferred_units": "imperial",
                "emergency_contacts": [{"name": "Ben", "relation": "father", "phone": "+1 555 0102"}],
            },
        },
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["first_name"] == "Pat"
    assert body["profile"]["timezone"] == "Asia/Tokyo"
    assert body["profile"]["allergies"] == ["Latex"]
    assert [c["name"] for c in body["profile"]["emergency_contacts"]] == ["Ben"]
    user.refresh_from_db()
    assert user.profile.blood_type == "O-"
    assert user.profile.emergency_contacts.count() == 1


def test_profile_patch_cannot_raise_the_role_or_verify_the_email(api_client, user):
    response = bearer(api_client, user).patch(
        "/api/v1/auth/profile/",
        {"role": "staff", "is_staff": True, "email_verified": True, "email": "new@example.org", "is_superuser": True},
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.role, user.is_superuser, user.email_verified, user.email) == (
        "patient",
        False,
        False,
        "patient@example.org",
    )


@pytest.mark.parametrize(
    ("profile", "attr"),
    [
        ({"timezone": "Nowhere/Special"}, "profile.timezone"),
        ({"blood_type": "Z+"}, "profile.blood_type"),
        ({"height_cm": 900}, "profile.height_cm"),
        ({"date_of_birth": "2999-01-01"}, "profile.date_of_birth"),
        ({"emergency_contacts": [{"name": "No phone"}]}, "profile.emergency_contacts.0.phone"),
    ],
)
def test_profile_patch_refuses_bad_values_naming_the_field(api_client, user, profile, attr):
    response = bearer(api_client, user).patch("/api/v1/auth/profile/", {"profile": profile})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr
    assert User.objects.get(pk=user.pk).profile.timezone == "UTC"
