"""The medications admin: plans, revisions and doses scoped to the clinician's patients under the medications scope,
read-only and in the access log; the catalog for staff only."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccessLog, Scope
from accounts.tests.factories import CareTeamGrantFactory, UserFactory
from medications.models import DrugClass, MedicationPlan
from medications.tests.factories import DoseFactory, MedicationPlanFactory, PlanRevisionFactory, at

pytestmark = pytest.mark.django_db

PLANS = reverse("admin:medications_medicationplan_changelist")
DOSES = reverse("admin:medications_dose_changelist")
REVISIONS = reverse("admin:medications_planrevision_changelist")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def not_found(response) -> bool:
    if response.status_code == 404:
        return True
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    return response.status_code == 302 and any("doesn’t exist" in m for m in messages)


def listed(response) -> set:
    assert response.status_code == 200
    return set(response.context["cl"].result_list)


def change_url(obj) -> str:
    return reverse(f"admin:medications_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.fixture
def histories(user, other_user):
    """One plan with a revision and a dose for each of two patients."""
    rows = {}
    for patient in (user, other_user):
        plan = MedicationPlanFactory(patient=patient, name=f"plan of {patient.email}")
        rows[patient] = (plan, PlanRevisionFactory(plan=plan, number=1), DoseFactory(plan=plan))
    return rows


def test_staff_see_every_patients_plans_revisions_and_doses(client, staff, user, other_user, histories):
    client.force_login(staff)
    assert listed(client.get(PLANS)) == {histories[user][0], histories[other_user][0]}
    assert listed(client.get(REVISIONS)) == {histories[user][1], histories[other_user][1]}
    assert listed(client.get(DOSES)) == {histories[user][2], histories[other_user][2]}


def test_a_clinician_with_a_medications_grant_sees_that_patients_plans_revisions_and_doses(
    client, clinician, user, other_user, histories
):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=[Scope.MEDICATIONS])
    client.force_login(clinician)
    plan, revision, dose = histories[user]

    assert listed(client.get(PLANS)) == {plan}
    assert listed(client.get(REVISIONS)) == {revision}
    assert listed(client.get(DOSES)) == {dose}
    for obj in histories[user]:
        assert client.get(change_url(obj)).status_code == 200
    for obj in histories[other_user]:
        assert not_found(client.get(change_url(obj)))


def test_a_clinician_whose_grant_lacks_medications_sees_none_of_them(client, clinician, user, histories):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=[Scope.METRICS])
    client.force_login(clinician)

    assert listed(client.get(PLANS)) == set()
    assert listed(client.get(REVISIONS)) == set()
    assert listed(client.get(DOSES)) == set()
    for obj in histories[user]:
        assert not_found(client.get(change_url(obj)))
    assert not AccessLog.objects.filter(actor=clinician).exists()


def test_reading_a_plan_writes_the_access_log(client, clinician, user, histories):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=[Scope.MEDICATIONS])
    client.force_login(clinician)
    plan = histories[user][0]

    page = client.get(change_url(plan))

    assert page.status_code == 200
    assert [len(inline.formset.queryset) for inline in page.context["inline_admin_formsets"]] == [1, 1]
    logged = AccessLog.objects.filter(actor=clinician).values_list("patient_id", "action", "resource", "object_id")
    assert list(logged) == [(user.pk, "read", "medicationplan", str(plan.pk))]


def test_the_plan_page_shows_its_revisions_and_recent_doses_read_only(client, staff, user):
    plan = MedicationPlanFactory(patient=user)
    PlanRevisionFactory(plan=plan, number=1, changes={"name": [None, "revision-one-name"]})
    recent = DoseFactory(plan=plan, scheduled_at=at(-2), status="taken", taken_at=at(-2), note="recent-dose-note")
    DoseFactory(plan=plan, scheduled_at=at(-30), status="missed", note="old-dose-note")
    client.force_login(staff)

    page = client.get(change_url(plan))

    assert page.status_code == 200
    text = page.content.decode()
    assert "revision-one-name" in text
    assert "recent-dose-note" in text
    assert "old-dose-note" not in text
    inlines = page.context["inline_admin_formsets"]
    assert [(i.has_add_permission, i.has_change_permission, i.has_delete_permission) for i in inlines] == [
        (False, False, False),
        (False, False, False),
    ]
    assert [dose.pk for dose in inlines[1].formset.queryset] == [recent.pk]


def test_plans_cannot_be_added_or_changed_in_the_admin(client, staff, user):
    plan = MedicationPlanFactory(patient=user, name="Before")
    client.force_login(staff)

    assert client.get(reverse("admin:medications_medicationplan_add")).status_code == 403
    client.post(change_url(plan), {"name": "After", "patient": user.pk, "start_date": plan.start_date})

    assert MedicationPlan.objects.get(pk=plan.pk).name == "Before"


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("as_clinician", [False, True])
def test_plan_and_dose_lists_take_the_same_queries_for_one_row_or_five(client, staff, clinician, as_clinician):
    reader = clinician if as_clinician else staff
    client.force_login(reader)

    def add_patient() -> None:
        patient = UserFactory()
        if as_clinician:
            CareTeamGrantFactory(patient=patient, clinician=clinician, scopes=[Scope.MEDICATIONS])
        plan = MedicationPlanFactory(patient=patient)
        PlanRevisionFactory(plan=plan, number=1)
        DoseFactory(plan=plan)

    add_patient()
    one = {url: _queries(client, url) for url in (PLANS, DOSES, REVISIONS)}
    for _ in range(4):
        add_patient()
    five = {url: _queries(client, url) for url in (PLANS, DOSES, REVISIONS)}

    assert five == one
    assert len(listed(client.get(DOSES))) == 5


def test_staff_edit_the_catalog(client, staff):
    client.force_login(staff)

    response = client.post(
        reverse("admin:medications_drugclass_add"),
        {"code": "test-statins", "name": "Test statins", "synonyms": "[]", "source": "test", "duplicate_therapy": "on"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert DrugClass.objects.get(code="test-statins").duplicate_therapy is True


@pytest.mark.parametrize("model", ["drugclass", "ingredient", "medication", "interactionrule"])
def test_a_clinician_neither_sees_nor_edits_the_catalog(client, model):
    clinician = CareTeamGrantFactory(scopes=list(Scope.values)).clinician
    client.force_login(clinician)

    assert client.get(reverse(f"admin:medications_{model}_changelist")).status_code == 403
    assert client.get(reverse(f"admin:medications_{model}_add")).status_code == 403
    assert "medications/drugclass" not in client.get(reverse("admin:index")).content.decode()


def test_the_login_page_opens_for_someone_not_signed_in(client):
    assert client.get(reverse("admin:login")).status_code == 200


def test_a_staff_member_without_catalog_permissions_cannot_edit_it(client):
    client.force_login(UserFactory(role="staff"))
    assert client.get(reverse("admin:medications_drugclass_add")).status_code == 403


def test_the_changelist_of_doses_filters_by_day(client, staff, user):
    today = DoseFactory(plan=MedicationPlanFactory(patient=user), scheduled_at=at(0))
    DoseFactory(plan=today.plan, scheduled_at=at(-3))
    client.force_login(staff)
    day = timezone.now().date()
    since = {"local_date__gte": day.isoformat(), "local_date__lt": (day + timedelta(days=1)).isoformat()}

    assert listed(client.get(DOSES, since)) == {today}
