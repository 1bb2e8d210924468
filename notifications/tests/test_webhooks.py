"""Webhooks: fan-out from notify(), Standard Webhooks signatures (checked with the independent
`standardwebhooks` package), retries, disabling, SSRF refusals, against a receiver served on loopback."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, OrganizationFactory, UserFactory
from config import crypto
from notifications.models import Notification, WebhookDelivery, WebhookSubscription
from notifications.services import notify
from notifications.tests.receiver import Receiver
from notifications.webhooks import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    create_subscription,
    new_secret,
    requeue_due_webhook_deliveries,
    rotate_secret,
    send_webhook_delivery,
)

pytestmark = pytest.mark.django_db

GLUCOSE = {"metric": "Blood glucose", "message": "Blood glucose 48 mg/dL, below 54.", "alert_id": "a1"}
REFUSED_URLS = [
    "https://127.0.0.1/",
    "https://10.0.0.1/",
    "https://[::1]/",
    "http://169.254.169.254/",
    "https://localhost/",  # a host name that resolves to loopback
]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    peer = Receiver()
    yield peer
    peer.close()


def subscribe(owner, url, kinds=("health_alert_critical",), organization=None):
    subscription, secret = create_subscription(
        owner=owner, organization_id=organization.pk if organization else None, url=url, kinds=list(kinds)
    )
    return subscription, secret


def unchecked_subscription(owner, url):
    """A subscription whose URL was fine when it was made (its host resolves elsewhere now)."""
    return WebhookSubscription.objects.create(
        owner=owner, url=url, kinds=["health_alert_critical"], secret_encrypted=crypto.encrypt(new_secret())
    )


def alert(patient, key="a1:opened", scope="metrics"):
    notify("health_alert_critical", patient=patient, scope=scope, payload=GLUCOSE, dedupe_key=key)


def queued_for(subscription):
    return list(WebhookDelivery.objects.filter(subscription=subscription))


def test_a_delivery_is_signed_so_standardwebhooks_verifies_it_and_carries_ids_only(
    user, staff, receiver, django_capture_on_commit_callbacks
):
    subscription, secret = subscribe(staff, receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        alert(user)

    (request,) = receiver.requests
    assert request["path"] == "/hooks/openvitals"
    headers = request["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-signature"].startswith("v1,")
    event = Webhook(secret).verify(request["body"], headers)
    assert event["type"] == "health_alert_critical"
    assert event["data"] == {"patient_id": str(user.pk), "notification_kind": "health_alert_critical", "alert_id": "a1"}
    body = request["body"].decode()
    assert "mg/dL" not in body  # the body holds UUIDs, which may hold any digits: the unit and type are checked
    assert "48 mg" not in body
    assert "glucose" not in body.lower()
    assert user.email not in body
    assert user.first_name not in body
    delivery = WebhookDelivery.objects.get(subscription=subscription)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("sent", 1, 200)
    assert delivery.message_id == headers["webhook-id"]


def test_during_a_rotation_both_secrets_verify_and_after_the_window_only_the_new_one(user, staff, receiver):
    subscription, old = subscribe(staff, receiver.url)
    new = rotate_secret(subscription=subscription)
    assert new != old
    assert new.startswith("whsec_")

    alert(user, key="first")
    send_webhook_delivery(delivery_id=queued_for(subscription)[0].pk)
    first = receiver.requests[0]
    assert len(first["headers"]["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(first["body"], first["headers"])
    assert Webhook(old).verify(first["body"], first["headers"])

    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        previous_valid_until=timezone.now() - timedelta(seconds=1)
    )
    alert(user, key="second")
    second_delivery = WebhookDelivery.objects.get(subscription=subscription, dedupe_key="second")
    send_webhook_delivery(delivery_id=second_delivery.pk)
    second = receiver.requests[1]
    assert len(second["headers"]["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(second["body"], second["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(second["body"], second["headers"])


def test_a_500_is_tried_again_on_the_schedule_then_sent(user, staff, receiver):
    subscription, _ = subscribe(staff, receiver.url)
    receiver.answers = [(500, {}), (503, {}), (502, {})]
    alert(user)
    (delivery,) = queued_for(subscription)
    now = timezone.now()

    for attempt, delay in enumerate(RETRY_DELAYS[:3], start=1):
        assert send_webhook_delivery(delivery_id=delivery.pk, now=now) == "queued"
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
        assert delivery.next_attempt_at == now + timedelta(seconds=delay)
        assert delivery.last_error.startswith("HTTP 5")
        assert send_webhook_delivery(delivery_id=delivery.pk, now=now) is None  # not due yet
        now = delivery.next_attempt_at

    assert RETRY_DELAYS == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert send_webhook_delivery(delivery_id=delivery.pk, now=now) == "sent"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == ("sent", 4, 200, "")
    assert len(receiver.requests) == 4
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1  # the same message every time


def test_410_gone_disables_the_subscription_at_once_and_tells_its_owner(user, staff, receiver):
    subscription, _ = subscribe(staff, receiver.url)
    receiver.answers = [(410, {})]
    alert(user, key="first")

    assert send_webhook_delivery(delivery_id=queued_for(subscription)[0].pk) == "failed"

    subscription.refresh_from_db()
    assert not subscription.is_active
    assert "410" in subscription.disabled_reason
    (notice,) = Notification.objects.filter(recipient=staff, kind="webhook_disabled")
    assert notice.data == {"url": receiver.url}
    alert(user, key="second")
    assert len(queued_for(subscription)) == 1  # a disabled subscription gets no more deliveries


def test_a_delivery_that_fails_every_attempt_fails_and_disables_the_subscription(user, clinician, receiver):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    organization = clinician.clinician_profile.organization
    subscription, _ = subscribe(clinician, receiver.url, organization=organization)
    receiver.answers = [(500, {})] * MAX_ATTEMPTS
    alert(user)
    (delivery,) = queued_for(subscription)
    now = timezone.now()

    results = []
    for _ in range(MAX_ATTEMPTS):
        results.append(send_webhook_delivery(delivery_id=delivery.pk, now=now))
        delivery.refresh_from_db()
        now = delivery.next_attempt_at or now

    assert results == ["queued"] * (MAX_ATTEMPTS - 1) + ["failed"]
    assert (delivery.status, delivery.attempts) == ("failed", 8)
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert subscription.disabled_reason.startswith("all 8 attempts failed")
    assert Notification.objects.filter(recipient=clinician, kind="webhook_disabled").count() == 1


def test_deliveries_failing_in_a_row_disable_the_subscription(user, staff, settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    subscription = unchecked_subscription(staff, "https://10.0.0.1/")
    alert(user, key="first")
    alert(user, key="second")
    first, second = sorted(queued_for(subscription), key=lambda d: d.pk)

    assert send_webhook_delivery(delivery_id=first.pk) == "failed"
    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.consecutive_failures) == (True, 1)
    assert send_webhook_delivery(delivery_id=second.pk) == "failed"
    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.consecutive_failures) == (False, 2)
    assert Notification.objects.filter(recipient=staff, kind="webhook_disabled").count() == 1


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_an_address_inside_our_network_is_refused_at_send_time_without_retry(user, staff, url):
    subscription = unchecked_subscription(staff, url)
    alert(user)
    (delivery,) = queued_for(subscription)

    assert send_webhook_delivery(delivery_id=delivery.pk) == "failed"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, None)
    assert delivery.last_error.startswith("refused: ")
    assert "address" in delivery.last_error


def test_plain_http_is_refused_unless_allowed(user, staff, receiver, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    subscription = unchecked_subscription(staff, receiver.url)
    alert(user)

    assert send_webhook_delivery(delivery_id=queued_for(subscription)[0].pk) == "failed"
    assert receiver.requests == []
    assert "https" in WebhookDelivery.objects.get(subscription=subscription).last_error


def test_a_redirect_is_not_followed(user, staff, receiver):
    subscription, _ = subscribe(staff, receiver.url)
    receiver.answers = [(302, {"Location": "http://127.0.0.1:9/elsewhere"})]
    alert(user)
    (delivery,) = queued_for(subscription)

    assert send_webhook_delivery(delivery_id=delivery.pk) == "queued"

    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.response_status == 302
    assert "redirects are not followed" in delivery.last_error


def test_a_doubled_event_delivers_once(user, staff, receiver, django_capture_on_commit_callbacks):
    subscription, _ = subscribe(staff, receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        alert(user)
        alert(user)

    assert len(queued_for(subscription)) == 1
    assert len(receiver.requests) == 1


def test_a_delivery_claimed_twice_is_sent_once(user, staff, receiver):
    subscription, _ = subscribe(staff, receiver.url)
    alert(user)
    (delivery,) = queued_for(subscription)

    assert send_webhook_delivery(delivery_id=delivery.pk) == "sent"
    assert send_webhook_delivery(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 1


def test_an_organization_receives_only_events_its_clinicians_grants_cover(staff, receiver):
    patient, uncovered, other_scope = UserFactory(), UserFactory(), UserFactory()
    ours, theirs = ClinicianFactory(), ClinicianFactory()
    grant = CareTeamGrantFactory(patient=patient, clinician=ours, scopes=["metrics"])
    CareTeamGrantFactory(patient=other_scope, clinician=ours, scopes=["medications"])
    CareTeamGrantFactory(patient=uncovered, clinician=theirs, scopes=["metrics"])
    org_subscription, _ = subscribe(ours, receiver.url, organization=ours.clinician_profile.organization)
    platform, _ = subscribe(staff, receiver.url)
    other_org = OrganizationFactory()
    idle, _ = subscribe(ClinicianFactory(), receiver.url, organization=other_org)

    alert(patient, key="covered")
    alert(uncovered, key="uncovered")
    alert(other_scope, key="other-scope")
    notify("device_alert", recipients=[patient], about=patient, payload={"device": "CGM", "message": "m"})
    grant.revoked_at = timezone.now()
    grant.save()
    alert(patient, key="after-revocation")

    assert [d.dedupe_key for d in queued_for(org_subscription)] == ["covered"]
    assert sorted(d.dedupe_key for d in queued_for(platform)) == sorted(
        ["covered", "uncovered", "other-scope", "after-revocation"]
    )
    assert queued_for(idle) == []


def test_a_staff_subscription_to_an_event_without_a_patient_gets_it_and_an_organization_does_not(
    staff, clinician, receiver
):
    platform, _ = subscribe(staff, receiver.url, kinds=["export_failed"])
    org_subscription, _ = subscribe(
        clinician, receiver.url, kinds=["export_failed"], organization=clinician.clinician_profile.organization
    )

    notify("export_failed", recipients=[staff], payload={"reason": "disk full"}, dedupe_key="export:1")

    (delivery,) = queued_for(platform)
    assert delivery.payload["data"] == {"patient_id": None, "notification_kind": "export_failed"}
    assert queued_for(org_subscription) == []


def test_the_secret_is_stored_encrypted(staff, receiver):
    subscription, secret = subscribe(staff, receiver.url)
    rotate_secret(subscription=subscription)

    stored = json.dumps(list(WebhookSubscription.objects.filter(pk=subscription.pk).values())[0], default=str)
    assert secret not in stored
    assert secret.removeprefix("whsec_") not in stored
    subscription.refresh_from_db()
    assert crypto.decrypt(subscription.previous_secret_encrypted) == secret


def test_the_sweeper_hands_on_due_deliveries_and_claims_of_dead_workers(user, staff, receiver):
    subscription, _ = subscribe(staff, receiver.url)
    alert(user, key="due")
    alert(user, key="stale")
    due = WebhookDelivery.objects.get(dedupe_key="due")
    stale = WebhookDelivery.objects.get(dedupe_key="stale")
    WebhookDelivery.objects.filter(pk=stale.pk).update(
        status="sending", attempts=1, claimed_at=timezone.now() - timedelta(minutes=10)
    )

    assert requeue_due_webhook_deliveries() == 2  # tasks run eagerly in tests

    assert set(WebhookDelivery.objects.filter(subscription=subscription).values_list("status", flat=True)) == {"sent"}
    assert WebhookDelivery.objects.get(pk=due.pk).attempts == 1
    assert WebhookDelivery.objects.get(pk=stale.pk).attempts == 2
    assert len(receiver.requests) == 2


def test_a_slow_endpoint_times_out_and_is_tried_again(user, staff, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.delay = 1.0
    subscription, _ = subscribe(staff, receiver.url)
    alert(user)
    (delivery,) = queued_for(subscription)

    assert send_webhook_delivery(delivery_id=delivery.pk) == "queued"

    delivery.refresh_from_db()
    assert delivery.last_error.startswith("ReadTimeoutError"), delivery.last_error
    assert delivery.response_status is None


def test_a_refused_connection_is_tried_again(user, staff, receiver):
    subscription, _ = subscribe(staff, receiver.url)
    receiver.close()  # nobody listens on the port any more
    alert(user)
    (delivery,) = queued_for(subscription)

    assert send_webhook_delivery(delivery_id=delivery.pk) == "queued"

    delivery.refresh_from_db()
    assert "NewConnectionError" in delivery.last_error or "Connection refused" in delivery.last_error
