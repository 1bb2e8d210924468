from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import CareTeamGrant, Organization, Role, User
from accounts.selectors import visible_patients

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_user_makes_a_clinician_in_an_organization():
    output = run(
        "create_user",
        "--email=Dr.Lee@Example.org",
        "--role=clinician",
        "--password=a-Long-passphrase-77",
        "--organization=North Clinic",
        "--specialty=Geriatrics",
    )
    user = User.objects.get(email="dr.lee@example.org")
    assert "Created clinician dr.lee@example.org" in output
    assert user.role == Role.CLINICIAN
    assert user.check_password("a-Long-passphrase-77")
    assert user.clinician_profile.organization.name == "North Clinic"
    assert user.is_staff  # clinicians reach the (scoped) admin


def test_create_user_makes_staff_superusers():
    run("create_user", "--email=ops@example.org", "--role=staff", "--password=a-Long-passphrase-77")
    user = User.objects.get(email="ops@example.org")
    assert user.is_superuser
    assert user.is_staff


def test_create_user_refuses_a_weak_password_or_a_taken_email(user):
    with pytest.raises(CommandError, match="too short"):
        run("create_user", "--email=x@example.org", "--password=short")
    with pytest.raises(CommandError, match="already exists"):
        run("create_user", f"--email={user.email}", "--password=a-Long-passphrase-77")
    assert not User.objects.filter(email="x@example.org").exists()


def test_seed_demo_is_safe_to_run_twice():
    first = run("seed_demo")
    counts = (User.objects.count(), Organization.objects.count(), CareTeamGrant.objects.count())
    assert counts == (8, 2, 4)
    assert "OpenVitals-demo-2026" in first
    second = run("seed_demo")
    assert (User.objects.count(), Organization.objects.count(), CareTeamGrant.objects.count()) == counts
    assert "0 users" in second
    chen = User.objects.get(email="dr.chen@openvitals.local")
    assert set(visible_patients(chen, "metrics").values_list("email", flat=True)) == {
        "dr.chen@openvitals.local",
        "alice@openvitals.local",
    }
    assert User.objects.get(email="alice@openvitals.local").profile.timezone == "America/New_York"


def test_seed_demo_if_empty_leaves_an_existing_database_alone(user):
    output = run("seed_demo", "--if-empty")
    assert User.objects.count() == 1
    assert "not seeded" in output
