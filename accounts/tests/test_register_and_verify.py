import re

import pytest
from django.core import mail

from accounts.models import ClinicianInvitation, Role, User
from accounts.tests.factories import OrganizationFactory, UserFactory
from accounts.tokens import make_invitation_token

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"


def signup(**overrides):
    body = {
        "email": "New.Patient@Example.org",
        "password": "a-Long-enough-passphrase-7",
        "password_confirm": "a-Long-enough-passphrase-7",
        "first_name": "Nia",
        "last_name": "Okoro",
    }
    body.update(overrides)
    return body


def first_error(response):
    return response.json()["errors"][0]


def test_register_creates_a_patient_with_tokens_and_profile(api_client):
    body = signup(profile={"timezone": "Europe/Paris", "conditions": ["Asthma"], "height_cm": 170.5})
    response = api_client.post(REGISTER, body)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert set(data) == {"user", "tokens"}
    assert set(data["tokens"]) == {"access", "refresh"}
    assert data["user"]["email"] == "new.patient@example.org"
    assert data["user"]["role"] == "patient"
    assert data["user"]["email_verified"] is False
    assert data["user"]["profile"]["timezone"] == "Europe/Paris"
    assert data["user"]["profile"]["conditions"] == ["Asthma"]
    assert data["user"]["profile"]["height_cm"] == 170.5
    me = api_client.get("/api/v1/auth/current-user/", HTTP_AUTHORIZATION=f"Bearer {data['tokens']['access']}")
    assert me.status_code == 200
    assert me.json()["email"] == "new.patient@example.org"


def test_register_ignores_a_role_sent_by_the_client(api_client):
    response = api_client.post(REGISTER, signup(role="staff", is_superuser=True, is_staff=True))
    assert response.status_code == 201
    user = User.objects.get(email="new.patient@example.org")
    assert user.role == Role.PATIENT
    assert user.is_superuser is False
    assert user.is_staff is False


def test_register_with_a_taken_email_is_400_naming_the_field(api_client, user):
    response = api_client.post(REGISTER, signup(email=user.email.upper()))
    assert response.status_code == 400
    assert first_error(response)["attr"] == "email"
    assert first_error(response)["code"] == "unique"
    assert User.objects.filter(email=user.email).count() == 1


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short1A", "password_too_short"),
        ("password123", "password_too_common"),
        ("8473629105634", "password_entirely_numeric"),
    ],
)
def test_register_refuses_a_weak_password(api_client, password, code):
    response = api_client.post(REGISTER, signup(password=password, password_confirm=password))
    assert response.status_code == 400
    codes = {(e["attr"], e["code"]) for e in response.json()["errors"]}
    assert ("password", code) in codes
    assert not User.objects.filter(email="new.patient@example.org").exists()


def test_register_refuses_mismatched_confirmation(api_client):
    response = api_client.post(REGISTER, signup(password_confirm="something-Else-entirely-9"))
    assert response.status_code == 400
    assert first_error(response)["attr"] == "password_confirm"


def test_register_refuses_an_unknown_timezone_with_nothing_written(api_client):
    response = api_client.post(REGISTER, signup(profile={"timezone": "Mars/Olympus_Mons"}))
    assert response.status_code == 400
    assert first_error(response)["attr"] == "profile.timezone"
    assert not User.objects.filter(email="new.patient@example.org").exists()


def test_register_emails_a_verification_link_that_verifies(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(REGISTER, signup())
    assert response.status_code == 201
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.patient@example.org"]
    token = re.search(r"token=(\S+)", mail.outbox[0].body).group(1)
    verified = api_client.post("/api/v1/auth/verify-email/", {"token": token})
    assert verified.status_code == 200, verified.json()
    assert verified.json()["email_verified"] is True
    assert User.objects.get(email="new.patient@example.org").email_verified_at is not None


def test_verify_email_with_a_forged_token_is_400(api_client):
    response = api_client.post("/api/v1/auth/verify-email/", {"token": "not-a-real-token"})
    assert response.status_code == 400
    assert first_error(response)["attr"] == "token"


def test_a_clinician_registers_with_an_invitation(api_client):
    organization = OrganizationFactory(name="Lakeside Clinic")
    invitation = ClinicianInvitation.objects.create(
        email="dr.new@example.org", organization=organization, specialty="Nephrology"
    )
    body = signup(email="dr.new@example.org", invitation=make_invitation_token(invitation.pk))
    response = api_client.post(REGISTER, body)
    assert response.status_code == 201, response.json()
    user = User.objects.get(email="dr.new@example.org")
    assert user.role == Role.CLINICIAN
    assert user.email_verified
    assert user.clinician_profile.organization == organization
    assert user.clinician_profile.specialty == "Nephrology"
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None
    again = api_client.post(
        REGISTER, signup(email="dr.new@example.org", invitation=make_invitation_token(invitation.pk))
    )
    assert again.status_code == 400


def test_an_invitation_is_for_its_own_address_only(api_client):
    invitation = ClinicianInvitation.objects.create(email="dr.new@example.org")
    response = api_client.post(REGISTER, signup(invitation=make_invitation_token(invitation.pk)))
    assert response.status_code == 400
    assert first_error(response)["attr"] == "email"
    assert not User.objects.filter(email="new.patient@example.org").exists()


def test_a_forged_invitation_is_400(api_client):
    response = api_client.post(REGISTER, signup(invitation="forged"))
    assert response.status_code == 400
    assert first_error(response)["attr"] == "invitation"


def test_unknown_fields_are_ignored(api_client):
    response = api_client.post(REGISTER, signup(favourite_colour="teal"))
    assert response.status_code == 201


def test_existing_user_factory_has_a_profile():
    assert UserFactory().profile.timezone == "UTC"
