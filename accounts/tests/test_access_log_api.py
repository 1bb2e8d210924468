"""access-log/: a patient's accounting of disclosures (who read or changed their record, when, from where)."""

import pytest
from rest_framework.test import APIClient

from accounts.models import AccessLog, Scope
from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer

pytestmark = pytest.mark.django_db

LOG = "/api/v1/access-log/"


@pytest.fixture
def disclosed(user, other_user, clinician):
    """The clinician opens the user's patient page (a read of the user's record) and lists their patients."""
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=[Scope.METRICS])
    CareTeamGrantFactory(patient=other_user, clinician=clinician, scopes=[Scope.METRICS])
    client = bearer(APIClient(), clinician)
    assert client.get(f"/api/v1/patients/{user.pk}/", REMOTE_ADDR="203.0.113.9").status_code == 200
    assert client.get("/api/v1/patients/").status_code == 200


def test_a_patient_reads_who_read_their_record_newest_first(as_user, user, clinician, disclosed):
    response = as_user.get(LOG)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    newest, oldest = body["results"]
    assert (newest["action"], newest["resource"], newest["object_id"]) == ("list", "user", "")
    assert (oldest["action"], oldest["resource"], oldest["object_id"]) == ("read", "user", str(user.pk))
    assert oldest["actor"] == {"id": str(clinician.pk), "email": clinician.email, "name": clinician.get_full_name()}
    assert oldest["patient"] == str(user.pk)
    assert oldest["ip"] == "203.0.113.9"
    assert oldest["at"] <= newest["at"]


def test_a_patient_sees_only_their_own_history(api_client, other_user, user, disclosed):
    AccessLog.objects.create(actor=other_user, patient=other_user, resource="reading", action="read")
    client = bearer(api_client, other_user)
    assert client.get(LOG, {"patient": str(user.pk)}).status_code == 404
    body = client.get(LOG).json()
    assert {entry["patient"] for entry in body["results"]} == {str(other_user.pk)}
    assert body["count"] == 2  # the clinician's list page, and the row made here


def test_staff_see_everyones_history_and_filter_it(api_client, staff, user, other_user, clinician, disclosed):
    client = bearer(api_client, staff)
    assert client.get(LOG).json()["count"] == 3
    by_patient = client.get(LOG, {"patient": str(user.pk)}).json()
    assert {entry["patient"] for entry in by_patient["results"]} == {str(user.pk)}
    assert client.get(LOG, {"action": "read"}).json()["count"] == 1
    assert client.get(LOG, {"actor": str(clinician.pk), "resource": "user"}).json()["count"] == 3
    assert client.get(LOG, {"since": "2999-01-01T00:00:00Z"}).json()["count"] == 0


def test_a_bad_filter_is_400_naming_it(as_user):
    response = as_user.get(LOG, {"action": "steal"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "action"


def test_the_log_needs_a_login_and_is_read_only(api_client, as_user):
    assert api_client.__class__().get(LOG).status_code == 401
    assert as_user.post(LOG, {}).status_code == 405


def test_the_history_costs_the_same_queries_for_2_and_20_rows(as_user, user, clinician, django_assert_num_queries):
    for _ in range(2):
        AccessLog.objects.create(actor=clinician, patient=user, resource="reading", action="read")
    # The user, the count, the page with its actors; and the request's savepoint and its release.
    with django_assert_num_queries(5):
        as_user.get(LOG)
    for _ in range(18):
        AccessLog.objects.create(actor=clinician, patient=user, resource="reading", action="read")
    with django_assert_num_queries(5):
        as_user.get(LOG)
