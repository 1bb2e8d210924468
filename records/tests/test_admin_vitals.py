"""The admin's per-patient vitals page: charts from the rollups over 30 or 90 days, scores, and who may open it."""

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.utils import timezone

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory
from health_metrics.models import DailyHealthScore
from health_metrics.scoring import compute_health_score
from health_metrics.services import recompute_daily_summaries
from health_metrics.tests.factories import ReadingFactory
from records.charts import draw

pytestmark = pytest.mark.django_db

TITLES = ["Daily health score", "Heart rate", "Blood pressure", "Weight", "Glucose", "Oxygen saturation", "Steps"]


def page(user):
    return f"/admin/records/exportjob/patient/{user.pk}/vitals/"


def reading(user, type_id, value, day, secondary=None):
    return ReadingFactory(
        user=user,
        metric_type_id=type_id,
        value=value,
        secondary_value=secondary,
        recorded_at=datetime.combine(day, time(12), tzinfo=UTC),
        local_date=day,
    )


@pytest.fixture
def vitals(user):
    """Heart rate, blood pressure and steps today and 3 days ago, heart rate 60 days ago; rolled up, and scored."""
    today = timezone.localdate(timezone=UTC)
    days = [today, today - timedelta(days=3)]
    for day in days:
        reading(user, 2, 70, day)
        reading(user, 1, 120, day, secondary=80)
        reading(user, 27, 8000, day)
    reading(user, 2, 99, today - timedelta(days=60))
    pairs = [(t, d) for d in days for t in (1, 2, 27)] + [(2, today - timedelta(days=60))]
    recompute_daily_summaries(user_id=user.pk, days=pairs)
    compute_health_score(user=user, local_date=today)
    return today


def chart_titles(html):
    return re.findall(r"<section class=\"vitals-chart\">\s*<h2>([^<]+?) <small>", html)


def test_staff_see_every_chart_with_lines_bars_and_the_recent_scores(client, staff, user, vitals):
    client.force_login(staff)
    response = client.get(page(user))
    assert response.status_code == 200
    html = response.content.decode().split('id="content-main"')[1]  # the page's own content
    assert chart_titles(html) == ["Daily health score", *TITLES[1:5], "Oxygen saturation (SpO2)", "Steps"]
    assert (
        html.count('<svg viewBox="0 0 640 170"') == 4
    )  # score, heart rate, blood pressure, steps; the others have no data
    assert html.count("No data in these 30 days.") == 3
    assert "Systolic, " in html
    assert "Diastolic, " in html
    assert html.count("<rect") == 2  # a steps bar per day with data
    assert re.search(r"<polyline points=\"[\d.]+,[\d.]+\"", html)
    assert "<strong>30 days</strong>" in html
    assert 'href="?days=90"' in html
    score = DailyHealthScore.objects.get(user=user, local_date=vitals)
    assert f"<td><strong>{score.score}</strong></td>" in html
    assert "<script" not in html  # drawn on the server


def test_ninety_days_reach_further_back(client, staff, user, vitals):
    client.force_login(staff)
    sixty_days_ago = vitals - timedelta(days=60)
    label = f"{sixty_days_ago:%b} {sixty_days_ago.day}: 99 bpm"
    assert label not in client.get(page(user)).content.decode()
    ninety = client.get(page(user), {"days": "90"}).content.decode()
    assert label in ninety
    assert "<strong>90 days</strong>" in ninety


def test_a_consented_clinician_sees_the_page_and_the_look_is_logged(client, clinician, user, vitals):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    client.force_login(clinician)
    response = client.get(page(user))
    assert response.status_code == 200
    assert chart_titles(response.content.decode())[0] == "Daily health score"
    assert list(AccessLog.objects.values_list("actor_id", "patient_id", "resource", "action")) == [
        (clinician.pk, user.pk, "patient-vitals", "read")
    ]


@pytest.mark.parametrize("grant", ["none", "appointments_only", "revoked"])
def test_a_clinician_without_metrics_consent_gets_404(client, clinician, user, vitals, grant):
    if grant == "appointments_only":
        CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["appointments"])
    if grant == "revoked":
        CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"], revoked_at=timezone.now())
    client.force_login(clinician)
    assert client.get(page(user)).status_code == 404
    assert not AccessLog.objects.exists()


def test_a_patient_is_sent_to_the_admin_login(client, user, other_user):
    client.force_login(other_user)
    response = client.get(page(user))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_unknown_patient_is_404(client, staff, user):
    client.force_login(staff)
    assert client.get(page(user).replace(str(user.pk), "00000000-0000-0000-0000-000000000000")).status_code == 404


def test_the_user_change_page_links_to_the_patients_vitals(client, staff, user, clinician):
    client.force_login(staff)
    html = client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    assert f'href="{page(user)}"' in html
    assert "/vitals/" not in client.get(f"/admin/accounts/user/{clinician.pk}/change/").content.decode()


def test_a_missing_day_breaks_the_line():
    days = [date(2026, 3, d) for d in range(1, 6)]
    chart = draw(
        title="Weight",
        unit="kg",
        days=days,
        series=[("Weight", {days[0]: 80, days[1]: 81, days[3]: 82, days[4]: 83})],
    )
    assert [segment.count(",") for segment in chart.series[0].segments] == [2, 2]
    assert chart.series[0].latest == "83 kg on Mar 5"
    assert [tick.label for tick in chart.y_ticks] == ["80", "81", "82", "83"]


def test_the_score_list_is_scoped_like_the_rest_of_the_admin(client, staff, clinician, user, other_user, vitals):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    reading(other_user, 27, 4000, vitals)
    compute_health_score(user=other_user, local_date=vitals)
    url = "/admin/health_metrics/dailyhealthscore/"
    client.force_login(staff)
    listed = client.get(url).content.decode()
    assert user.email in listed
    assert other_user.email in listed
    client.force_login(clinician)
    listed = client.get(url).content.decode()
    assert user.email in listed
    assert other_user.email not in listed
