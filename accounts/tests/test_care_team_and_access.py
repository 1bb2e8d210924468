"""The access rule, care-team grants, the patients endpoint and the access log."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AccessLog, CareTeamGrant, Scope
from accounts.selectors import can_access, visible_patients
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from conftest import bearer

pytestmark = pytest.mark.django_db


def visible(user, scope=None):
    return set(visible_patients(user, scope).values_list("email", flat=True))


# --- visible_patients: the rule itself ------------------------------------------------------


def test_a_patient_sees_only_themselves(user, other_user):
    assert visible(user) == {user.email}
    assert not can_access(user, other_user)


def test_a_clinician_without_consent_sees_no_patient(clinician, user):
    assert visible(clinician) == {clinician.email}
    assert not can_access(clinician, user, Scope.METRICS)


def test_a_clinician_with_consent_sees_that_patient_for_the_granted_scopes(clinician, user, other_user):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=[Scope.METRICS, Scope.APPOINTMENTS])
    assert visible(clinician) == {clinician.email, user.email}
    assert visible(clinician, Scope.METRICS) == {clinician.email, user.email}
    assert visible(clinician, Scope.MEDICATIONS) == {clinician.email}
    assert can_access(clinician, user, Scope.APPOINTMENTS)
    assert not can_access(clinician, other_user, Scope.METRICS)


def test_expired_consent_grants_nothing(clinician, user):
    CareTeamGrantFactory(patient=user, clinician=clinician, expires_at=timezone.now() - timedelta(minutes=1))
    assert visible(clinician, Scope.METRICS) == {clinician.email}


def test_consent_that_has_not_yet_expired_counts(clinician, user):
    CareTeamGrantFactory(patient=user, clinician=clinician, expires_at=timezone.now() + timedelta(days=1))
    assert user.email in visible(clinician, Scope.METRICS)


def test_revoked_consent_grants_nothing(clinician, user):
    CareTeamGrantFactory(patient=user, clinician=clinician, revoked_at=timezone.now())
    assert visible(clinician) == {clinician.email}


def test_staff_see_every_patient(staff, user, other_user):
    assert {user.email, other_user.email} <= visible(staff, Scope.METRICS)


def test_another_clinicians_grant_does_not_leak(clinician, user):
    CareTeamGrantFactory(patient=user, clinician=ClinicianFactory())
    assert visible(clinician) == {clinician.email}


def test_an_inactive_clinician_sees_nothing(user):
    clinician = ClinicianFactory(is_active=False)
    CareTeamGrantFactory(patient=user, clinician=clinician)
    assert visible(clinician) == set()


# --- care-team endpoints ----------------------------------------------------------------------


def test_a_patient_grants_a_clinician_access(api_client, user, clinician):
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    response = bearer(api_client, user).post(
        "/api/v1/care-team/",
        {"clinician_email": "DR.WHO@example.org", "scopes": ["metrics", "medications"], "expires_at": expires},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["clinician"]["email"] == clinician.email
    assert body["patient"]["id"] == str(user.pk)
    assert body["scopes"] == ["medications", "metrics"]
    assert body["status"] == "active"
    assert can_access(clinician, user, Scope.MEDICATIONS)


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"clinician_email": "nobody@example.org", "scopes": ["metrics"]}, "clinician_email"),
        ({"clinician_email": "charlie@example.org", "scopes": ["metrics"]}, "clinician_email"),
        ({"clinician_email": "dr.who@example.org", "scopes": ["x-rays"]}, "scopes.0"),
        ({"clinician_email": "dr.who@example.org", "scopes": []}, "scopes"),
        ({"clinician_email": "dr.who@example.org", "scopes": ["metrics"], "expires_at": "2001-01-01T00:00:00Z"},
         "expires_at"),
    ],
)  # fmt: skip
def test_a_bad_grant_is_400_naming_the_field(api_client, user, other_user, clinician, body, attr):
    response = bearer(api_client, user).post("/api/v1/care-team/", body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr
    assert not CareTeamGrant.objects.exists()


def test_a_second_open_grant_to_the_same_clinician_is_409(api_client, user, clinician):
    client = bearer(api_client, user)
    assert (
        client.post("/api/v1/care-team/", {"clinician_email": clinician.email, "scopes": ["metrics"]}).status_code
        == 201
    )
    again = client.post("/api/v1/care-team/", {"clinician_email": clinician.email, "scopes": ["appointments"]})
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "already_granted"
    assert CareTeamGrant.objects.count() == 1


def test_a_new_grant_may_follow_an_expired_one(api_client, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, expires_at=timezone.now() - timedelta(days=1))
    response = bearer(api_client, user).post(
        "/api/v1/care-team/", {"clinician_email": clinician.email, "scopes": ["metrics"]}
    )
    assert response.status_code == 201
    assert can_access(clinician, user, Scope.METRICS)


def test_revoking_takes_effect_at_once(api_client, user, clinician):
    grant = CareTeamGrantFactory(patient=user, clinician=clinician)
    clinician_client = bearer(api_client.__class__(), clinician)
    assert clinician_client.get(f"/api/v1/patients/{user.pk}/").status_code == 200
    response = bearer(api_client, user).delete(f"/api/v1/care-team/{grant.pk}/")
    assert response.status_code == 204
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert clinician_client.get(f"/api/v1/patients/{user.pk}/").status_code == 404
    listed = bearer(api_client, user).get("/api/v1/care-team/").json()["results"]
    assert [g["status"] for g in listed] == ["revoked"]


def test_only_the_patient_revokes(api_client, user, clinician):
    grant = CareTeamGrantFactory(patient=user, clinician=clinician)
    assert bearer(api_client, clinician).delete(f"/api/v1/care-team/{grant.pk}/").status_code == 403
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_the_care_team_list_shows_own_grants_only(api_client, user, other_user, clinician):
    mine = CareTeamGrantFactory(patient=user, clinician=clinician)
    CareTeamGrantFactory(patient=other_user)
    body = bearer(api_client, user).get("/api/v1/care-team/").json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == str(mine.pk)
    assert bearer(api_client, clinician).get("/api/v1/care-team/").json()["count"] == 1


# --- patients endpoint -------------------------------------------------------------------------


def test_a_clinician_lists_consented_patients_only(api_client, user, other_user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics", "appointments"])
    response = bearer(api_client, clinician).get("/api/v1/patients/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [p["id"] for p in results] == [str(user.pk)]
    assert results[0]["access"] == {"scopes": ["metrics", "appointments"], "expires_at": None}
    assert bearer(api_client, clinician).get(f"/api/v1/patients/{other_user.pk}/").status_code == 404


def test_a_patient_has_no_patients(api_client, user, other_user):
    assert bearer(api_client, user).get("/api/v1/patients/").json()["count"] == 0
    assert bearer(api_client, user).get(f"/api/v1/patients/{other_user.pk}/").status_code == 404


def test_the_patient_filter_is_404_for_someone_not_visible(api_client, user, other_user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    client = bearer(api_client, clinician)
    assert client.get(f"/api/v1/care-team/?patient={user.pk}").status_code == 200
    assert client.get(f"/api/v1/care-team/?patient={other_user.pk}").status_code == 404
    bad = client.get("/api/v1/care-team/?patient=not-a-uuid")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["attr"] == "patient"


def test_the_patients_list_costs_the_same_queries_for_more_patients(api_client, clinician):
    def count_queries():
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert bearer(api_client, clinician).get("/api/v1/patients/").status_code == 200
        return len(captured)

    CareTeamGrantFactory(clinician=clinician)
    few = count_queries()
    for _ in range(5):
        CareTeamGrantFactory(clinician=clinician)
    assert count_queries() == few


# --- the access log --------------------------------------------------------------------------


def test_a_clinicians_reads_are_logged(api_client, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    client = bearer(api_client, clinician)
    client.get("/api/v1/patients/", REMOTE_ADDR="10.0.0.7")
    response = client.get(f"/api/v1/patients/{user.pk}/", REMOTE_ADDR="10.0.0.7")
    rows = list(AccessLog.objects.order_by("id"))
    assert [(r.actor_id, r.patient_id, r.resource, r.action) for r in rows] == [
        (clinician.pk, user.pk, "user", "list"),
        (clinician.pk, user.pk, "user", "read"),
    ]
    assert rows[1].object_id == str(user.pk)
    assert rows[1].ip == "10.0.0.7"
    assert rows[1].request_id == response["X-Request-ID"]


def test_a_patient_reading_their_own_data_is_not_logged(api_client, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    bearer(api_client, user).get("/api/v1/care-team/")
    assert not AccessLog.objects.exists()


def test_the_access_log_cannot_be_changed_or_deleted(user, clinician):
    row = AccessLog.objects.create(actor=clinician, patient=user, resource="user", action="read")
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.delete()
    with pytest.raises(PermissionError):
        AccessLog.objects.filter(pk=row.pk).update(resource="other")
    with pytest.raises(PermissionError):
        AccessLog.objects.all().delete()


def test_the_database_refuses_to_change_the_access_log(user, clinician):
    row = AccessLog.objects.create(actor=clinician, patient=user, resource="user", action="read")
    for statement in (
        "UPDATE accounts_accesslog SET resource = 'x' WHERE id = %s",
        "DELETE FROM accounts_accesslog WHERE id = %s",
    ):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [row.pk])
    assert AccessLog.objects.get(pk=row.pk).resource == "user"


def test_the_access_log_admin_is_read_only_even_for_superusers(client, staff, user, clinician):
    row = AccessLog.objects.create(actor=clinician, patient=user, resource="user", action="read")
    client.force_login(staff)
    assert client.get("/admin/accounts/accesslog/").status_code == 200
    assert client.get("/admin/accounts/accesslog/add/").status_code == 403
    assert client.post(f"/admin/accounts/accesslog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AccessLog.objects.filter(pk=row.pk).exists()


def test_the_admin_is_scoped_for_clinicians(client, user, other_user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    client.force_login(clinician)
    page = client.get("/admin/accounts/user/")
    assert page.status_code == 200
    assert user.email in page.content.decode()
    assert other_user.email not in page.content.decode()
    assert client.get(f"/admin/accounts/user/{other_user.pk}/change/").status_code == 302  # "doesn't exist"
    assert client.get("/admin/accounts/organization/").status_code == 403


def test_a_grant_to_oneself_is_refused_by_the_database(user):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        CareTeamGrant.objects.create(patient=user, clinician=user, scopes=["metrics"])


def test_a_patient_does_not_see_a_newcomer(user):
    newcomer = UserFactory()
    assert newcomer.email not in visible(user)


def test_only_patients_grant_care_team_access(api_client, clinician, staff):
    other = ClinicianFactory(email="dr.other@example.org")
    for person in (clinician, staff):
        response = bearer(api_client, person).post(
            "/api/v1/care-team/", {"clinician_email": other.email, "scopes": ["metrics"]}
        )
        assert response.status_code == 403
    assert not CareTeamGrant.objects.exists()
