import pytest
from django.contrib import admin
from django.core import mail

from accounts.models import AuthSession, ClinicianInvitation, Role, User
from accounts.services import end_session
from accounts.tests.factories import CareTeamGrantFactory
from accounts.tokens import issue_tokens, token_hash

pytestmark = pytest.mark.django_db


def test_every_admin_page_opens_for_staff(client, staff, user):
    CareTeamGrantFactory(patient=user)
    client.force_login(staff)
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = client.get(f"/admin/{opts.app_label}/{opts.model_name}/")
        assert changelist.status_code == 200, opts.label
        if model_admin.has_add_permission(type("R", (), {"user": staff})()):
            assert client.get(f"/admin/{opts.app_label}/{opts.model_name}/add/").status_code == 200, opts.label
    assert client.get(f"/admin/accounts/user/{user.pk}/change/").status_code == 200


def test_staff_add_a_clinician_in_the_admin(client, staff):
    client.force_login(staff)
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "dr.admin@example.org",
            "role": Role.CLINICIAN,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "usable_password": "true",
            "password1": "a-Long-passphrase-77",
            "password2": "a-Long-passphrase-77",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    clinician = User.objects.get(email="dr.admin@example.org")
    assert clinician.role == Role.CLINICIAN
    assert clinician.check_password("a-Long-passphrase-77")
    assert clinician.profile is not None
    assert clinician.clinician_profile is not None


def test_saving_an_invitation_emails_the_link(client, staff, django_capture_on_commit_callbacks):
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/accounts/clinicianinvitation/add/",
            {
                "email": "dr.invited@example.org",
                "specialty": "Oncology",
                "expires_at_0": "2099-01-01",
                "expires_at_1": "00:00:00",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    invitation = ClinicianInvitation.objects.get(email="dr.invited@example.org")
    assert invitation.invited_by == staff
    assert len(mail.outbox) == 1
    assert "invitation=" in mail.outbox[0].body


def test_a_patient_cannot_open_the_admin(client, user):
    client.force_login(user)
    assert client.get("/admin/").status_code == 302


def test_the_sessions_admin_shows_ids_times_and_state_never_a_token(client, staff, user):
    phone = issue_tokens(user)
    laptop = issue_tokens(user)
    end_session(user=user, refresh=laptop["refresh"])
    phone_session, laptop_session = (
        AuthSession.objects.get(refresh_tokens__token_hash=token_hash(pair["refresh"])) for pair in (phone, laptop)
    )
    client.force_login(staff)

    listing = client.get("/admin/accounts/authsession/").content.decode()
    detail = client.get(f"/admin/accounts/authsession/{laptop_session.pk}/change/").content.decode()

    assert str(phone_session.pk) in listing
    assert str(laptop_session.pk) in listing
    assert "live" in listing
    assert "Logged out" in listing
    assert laptop_session.refresh_tokens.get().jti in detail
    for page in (listing, detail):
        for token in (*phone.values(), *laptop.values()):
            assert token.rsplit(".", 1)[1] not in page
        assert token_hash(laptop["refresh"]) not in page
