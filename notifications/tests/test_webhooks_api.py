"""notifications/webhooks/: who may subscribe and see what; secrets answered once; SSRF checks at create."""

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import ClinicianFactory, ClinicianProfileFactory, UserFactory
from conftest import bearer
from notifications.models import WebhookDelivery, WebhookSubscription
from notifications.tests.test_webhooks import REFUSED_URLS
from notifications.webhooks import create_subscription

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/webhooks/"
PUBLIC = "https://93.184.215.14/hooks"  # a public address literal: checked without DNS, never called here


def client_of(person):
    return bearer(APIClient(), person)


def create(person, **body):
    return client_of(person).post(URL, {"url": PUBLIC, "kinds": ["health_alert_critical"], **body}, format="json")


def test_staff_create_a_platform_subscription_and_see_the_secret_once(staff):
    response = create(staff)

    assert response.status_code == 201, response.json()
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["organization"] is None
    assert body["owner"] == str(staff.pk)
    assert body["kinds"] == ["health_alert_critical"]
    listed = client_of(staff).get(URL)
    detail = client_of(staff).get(f"{URL}{body['id']}/")
    for answer in (listed, detail):
        assert answer.status_code == 200
        assert secret not in answer.content.decode()
        assert "secret" not in answer.content.decode().replace("previous_secret_valid_until", "")
    row = WebhookSubscription.objects.filter(pk=body["id"]).values().get()
    assert secret not in str(row)


def test_a_clinician_subscribes_for_their_organization_and_another_organization_gets_404(clinician):
    outsider = ClinicianFactory()
    colleague = UserFactory(role="clinician")
    ClinicianProfileFactory(user=colleague, organization=clinician.clinician_profile.organization)

    created = create(clinician)
    assert created.status_code == 201
    pk = created.json()["id"]
    assert created.json()["organization"] == str(clinician.clinician_profile.organization_id)

    assert [s["id"] for s in client_of(colleague).get(URL).json()["results"]] == [pk]
    other = client_of(outsider)
    assert other.get(URL).json()["results"] == []
    assert other.get(f"{URL}{pk}/").status_code == 404
    assert other.patch(f"{URL}{pk}/", {"is_active": False}, format="json").status_code == 404
    assert other.put(f"{URL}{pk}/", {"url": PUBLIC, "kinds": ["message"]}, format="json").status_code == 404
    assert other.get(f"{URL}{pk}/deliveries/").status_code == 404
    assert other.post(f"{URL}{pk}/rotate-secret/").status_code == 404
    assert other.delete(f"{URL}{pk}/").status_code == 404
    assert WebhookSubscription.objects.get(pk=pk).is_active


def test_a_patient_cannot_subscribe_and_sees_none(user, staff):
    create(staff)

    response = create(user)

    assert response.status_code == 403
    assert "organization" in response.json()["errors"][0]["detail"]
    assert client_of(user).get(URL).json()["results"] == []
    unattached = UserFactory(role="clinician")  # a clinician with no organization
    assert create(unattached).status_code == 403


def test_an_unknown_kind_is_refused_naming_the_valid_ones(staff):
    response = create(staff, kinds=["health_alert_critical", "gossip"])

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["attr"] == "kinds"
    assert "'gossip'" in error["detail"]
    assert "health_alert_critical" in error["detail"]
    assert "message" in error["detail"]


@pytest.mark.parametrize("url", [*REFUSED_URLS, "ftp://example.org/", "not a url"])
def test_an_address_inside_our_network_is_refused_at_create_naming_the_problem(staff, url):
    response = create(staff, url=url)

    assert response.status_code == 400, response.json()
    (error,) = response.json()["errors"]
    assert error["attr"] == "url"
    assert WebhookSubscription.objects.count() == 0


def test_plain_http_is_refused_when_not_allowed(staff, settings):
    settings.WEBHOOK_ALLOW_HTTP = False

    response = create(staff, url="http://93.184.215.14/hooks")

    assert response.status_code == 400
    assert "https" in response.json()["errors"][0]["detail"]


def test_an_update_is_checked_too_and_turning_on_again_forgets_failures(staff):
    pk = create(staff).json()["id"]
    client = client_of(staff)

    refused = client.patch(f"{URL}{pk}/", {"url": "https://10.0.0.1/"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["attr"] == "url"
    WebhookSubscription.objects.filter(pk=pk).update(
        is_active=False, consecutive_failures=5, disabled_reason="5 deliveries in a row failed"
    )

    response = client.patch(f"{URL}{pk}/", {"is_active": True, "kinds": ["message"]}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["is_active"], body["consecutive_failures"], body["disabled_reason"]) == (True, 0, "")
    assert body["kinds"] == ["message"]
    replaced = client.put(f"{URL}{pk}/", {"url": "https://93.184.215.15/", "kinds": ["device_alert"]}, format="json")
    assert replaced.status_code == 200
    assert replaced.json()["url"] == "https://93.184.215.15/"
    assert client.delete(f"{URL}{pk}/").status_code == 204
    assert not WebhookSubscription.objects.filter(pk=pk).exists()


def test_rotating_answers_the_new_secret_once(staff):
    created = create(staff).json()

    response = client_of(staff).post(f"{URL}{created['id']}/rotate-secret/")

    assert response.status_code == 200
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != created["secret"]
    detail = client_of(staff).get(f"{URL}{created['id']}/").json()
    assert detail["previous_secret_valid_until"] == body["previous_secret_valid_until"]
    assert body["secret"] not in str(detail)


def test_the_delivery_log_is_newest_first_in_constant_queries(staff, django_assert_max_num_queries):
    subscription, _ = create_subscription(owner=staff, organization_id=None, url=PUBLIC, kinds=["message"])
    client = client_of(staff)

    def add(count):
        for _ in range(count):
            number = WebhookDelivery.objects.count()
            WebhookDelivery.objects.create(
                subscription=subscription,
                message_id=f"msg_{number}",
                kind="message",
                payload={"type": "message", "data": {"n": number}},
            )

    add(1)
    with django_assert_max_num_queries(50) as one:
        client.get(f"{URL}{subscription.pk}/deliveries/")
    add(9)
    with django_assert_max_num_queries(50) as ten:
        response = client.get(f"{URL}{subscription.pk}/deliveries/")

    assert len(ten.captured_queries) == len(one.captured_queries)
    results = response.json()["results"]
    assert response.json()["count"] == 10
    assert [r["message_id"] for r in results] == [f"msg_{n}" for n in range(9, -1, -1)]
    assert results[0]["status"] == "queued"
