"""Push to Apple devices through APNs with token auth, against a fake APNs served over HTTP on loopback.

The fake checks each request as APNs does: the provider JWT's ES256 signature with the test key's public key,
its `kid` and `iss`, and the APNs headers; it answers what a test tells it per device token.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone

from notifications import apns
from notifications.models import PushDevice
from notifications.services import deliver, notify
from notifications.tests.test_push import FakeFCM

pytestmark = pytest.mark.django_db

GLUCOSE = {"metric": "Blood glucose", "message": "Blood glucose 48 mg/dL, below 54.", "alert_id": "a1"}
KEY_ID, TEAM_ID, TOPIC = "ABC123DEFG", "TEAM123456", "org.openvitals.app"


class FakeAPNs:
    """Answers `POST /3/device/<token>`: 403 InvalidProviderToken for a JWT that does not verify, 403
    ExpiredProviderToken for one in `expired_jwts`, else `answers[token]` (status, reason) or 200."""

    def __init__(self, public_key) -> None:  # noqa: ANN001
        self.requests: list[dict] = []
        self.answers: dict[str, tuple[int, str]] = {}
        self.expired_jwts: set[str] = set()
        self.expire_every_jwt = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                token = self.path.removeprefix("/3/device/")
                scheme, _, provider_jwt = (self.headers["authorization"] or "").partition(" ")
                try:
                    claims = jwt.decode(provider_jwt, public_key, algorithms=["ES256"], options={"verify_iat": False})
                    header = jwt.get_unverified_header(provider_jwt)
                    valid = scheme == "bearer" and header["kid"] == KEY_ID and claims["iss"] == TEAM_ID
                except jwt.PyJWTError:
                    claims, valid = {}, False
                fake.requests.append(
                    {"token": token, "headers": dict(self.headers), "body": body, "jwt": provider_jwt, "claims": claims}
                )
                if not valid:
                    status, reason = 403, "InvalidProviderToken"
                elif fake.expire_every_jwt or provider_jwt in fake.expired_jwts:
                    status, reason = 403, "ExpiredProviderToken"
                elif self.headers["apns-topic"] != TOPIC:
                    status, reason = 400, "DeviceTokenNotForTopic"
                else:
                    status, reason = fake.answers.get(token, (200, ""))
                payload = json.dumps({"reason": reason}).encode() if reason else b""
                self.send_response(status)
                self.send_header("apns-id", "eabeae54-14a8-11e5-b60b-1697f925ec7b")
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def apple(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    fake = FakeAPNs(key.public_key())
    settings.APNS_ENDPOINT, settings.APNS_TOPIC = fake.url, TOPIC
    settings.APNS_KEY_ID, settings.APNS_TEAM_ID, settings.APNS_AUTH_KEY = KEY_ID, TEAM_ID, pem
    apns.PROVIDER_TOKENS.forget()
    yield fake
    apns.PROVIDER_TOKENS.forget()
    fake.close()


@pytest.fixture
def fcm(settings):
    fake = FakeFCM()
    settings.FCM_ENDPOINT, settings.FCM_PROJECT_ID, settings.FCM_ACCESS_TOKEN = fake.url, "demo", "test-access-token"
    yield fake
    fake.close()


def push_of(notification):
    return notification.deliveries.get(channel="push")


def test_an_apns_push_carries_the_neutral_text_and_the_apns_headers_never_the_value(user, apple):
    PushDevice.objects.create(user=user, platform="apns", token="a1b2c3")
    before = int(time.time())
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "sent"

    (sent,) = apple.requests
    assert sent["token"] == "a1b2c3"
    headers = sent["headers"]
    assert headers["apns-topic"] == TOPIC
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"  # critical: at once
    assert headers["apns-collapse-id"] == str(notification.pk)
    assert int(headers["apns-expiration"]) > before
    assert jwt.get_unverified_header(sent["jwt"])["alg"] == "ES256"
    assert sent["claims"]["iss"] == TEAM_ID
    assert before - 1 <= sent["claims"]["iat"] <= int(time.time()) + 1
    neutral = "OpenVitals: an urgent health alert needs your attention. Open the app."
    assert sent["body"] == {
        "aps": {"alert": {"title": "OpenVitals", "body": neutral}, "sound": "default"},
        "notification_id": str(notification.pk),
        "kind": "health_alert_critical",
    }
    shown = json.dumps(sent["body"]).replace(str(notification.pk), "")  # a UUID may hold any digits
    assert "48" not in shown
    assert "glucose" not in shown.lower()
    assert PushDevice.objects.get(token="a1b2c3").last_used_at >= notification.created_at


def test_a_non_critical_push_goes_at_normal_priority(user, apple):
    PushDevice.objects.create(user=user, platform="apns", token="a1b2c3")
    (notification,) = notify("health_alert", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "sent"
    assert apple.requests[0]["headers"]["apns-priority"] == "5"


@pytest.mark.parametrize(
    ("status", "reason"), [(410, "Unregistered"), (400, "BadDeviceToken"), (400, "DeviceTokenNotForTopic")]
)
def test_a_token_apns_calls_dead_is_deleted_and_the_others_still_get_it(user, apple, status, reason):
    PushDevice.objects.create(user=user, platform="apns", token="old-iphone")
    PushDevice.objects.create(user=user, platform="apns", token="new-iphone")
    apple.answers["old-iphone"] = (status, reason)
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "sent"
    assert list(PushDevice.objects.values_list("token", flat=True)) == ["new-iphone"]


def test_when_every_token_is_dead_the_push_is_not_sent(user, apple):
    PushDevice.objects.create(user=user, platform="apns", token="old-iphone")
    apple.answers["old-iphone"] = (410, "Unregistered")
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "not_sent"
    assert push_of(notification).reason == "no_push_device"
    assert not PushDevice.objects.exists()


def test_apns_unavailable_is_retried_later(user, apple):
    PushDevice.objects.create(user=user, platform="apns", token="a1b2c3")
    apple.answers["a1b2c3"] = (503, "ServiceUnavailable")
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "queued"
    delivery = push_of(notification)
    assert delivery.next_attempt_at > timezone.now()
    assert "APNs 503" in delivery.last_error
    assert PushDevice.objects.filter(token="a1b2c3").exists()


def test_a_refusal_that_will_not_change_fails_the_delivery(user, apple):
    PushDevice.objects.create(user=user, platform="apns", token="a1b2c3")
    apple.answers["a1b2c3"] = (413, "PayloadTooLarge")
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "failed"
    assert push_of(notification).reason == "apns_413_PayloadTooLarge"


def test_an_expired_provider_token_is_made_anew_once(user, apple):
    PushDevice.objects.create(user=user, platform="apns", token="a1b2c3")
    stale = apns.PROVIDER_TOKENS.get()
    apple.expired_jwts.add(stale)
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "sent"
    first, second = apple.requests
    assert first["jwt"] == stale
    assert second["jwt"] != stale
    assert apns.PROVIDER_TOKENS.get() == second["jwt"]  # the new one is kept


def test_a_provider_token_refused_again_after_a_new_one_is_retried_not_looped(user, apple):
    PushDevice.objects.create(user=user, platform="apns", token="a1b2c3")
    apple.expire_every_jwt = True
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "queued"
    assert len(apple.requests) == 2
    assert "ExpiredProviderToken" in push_of(notification).last_error


def test_the_provider_token_is_reused_across_pushes(user, other_user, apple):
    PushDevice.objects.create(user=user, platform="apns", token="phone-of-user")
    PushDevice.objects.create(user=other_user, platform="apns", token="phone-of-other")
    (first,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)
    (second,) = notify("health_alert_critical", patient=other_user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(first).pk) == "sent"
    assert deliver(delivery_id=push_of(second).pk) == "sent"
    assert apple.requests[0]["jwt"] == apple.requests[1]["jwt"]


def test_the_provider_token_is_made_anew_after_50_minutes_not_before(apple):
    start = time.time()
    token = apns.PROVIDER_TOKENS.get(now=start)

    assert apns.PROVIDER_TOKENS.get(now=start + 49 * 60) == token
    later = apns.PROVIDER_TOKENS.get(now=start + 51 * 60)
    assert later != token
    assert jwt.decode(later, options={"verify_signature": False})["iat"] == int(start + 51 * 60)
    assert apns.PROVIDER_TOKENS.get(now=start + 52 * 60) == later


def test_a_push_after_the_token_lifetime_signs_with_a_new_token(apple):
    start = time.time()
    payload = {"aps": {"alert": {"title": "OpenVitals", "body": "x"}}}

    assert apns.send(token="t1", payload=payload, collapse_id="c1", critical=False, now=start).outcome == "ok"
    assert apns.send(token="t1", payload=payload, collapse_id="c2", critical=False, now=start + 60).outcome == "ok"
    assert apns.send(token="t1", payload=payload, collapse_id="c3", critical=False, now=start + 51 * 60).outcome == "ok"
    first, second, third = (request["claims"]["iat"] for request in apple.requests)
    assert first == second == int(start)
    assert third == int(start + 51 * 60)


def test_a_rotated_key_makes_a_new_provider_token_at_once(apple, settings):
    token = apns.PROVIDER_TOKENS.get()
    settings.APNS_KEY_ID = "NEWKEY9999"

    assert jwt.get_unverified_header(apns.PROVIDER_TOKENS.get())["kid"] == "NEWKEY9999"
    assert apns.PROVIDER_TOKENS.get() != token


def test_a_person_with_android_and_apple_phones_gets_both(user, apple, fcm):
    PushDevice.objects.create(user=user, platform="fcm", token="pixel")
    PushDevice.objects.create(user=user, platform="apns", token="iphone")
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "sent"
    assert [request["body"]["message"]["token"] for request in fcm.requests] == ["pixel"]
    assert [request["token"] for request in apple.requests] == ["iphone"]


def test_without_an_apns_key_apple_phones_are_left_out_and_android_ones_still_get_it(user, fcm, settings):
    settings.APNS_AUTH_KEY = ""
    PushDevice.objects.create(user=user, platform="fcm", token="pixel")
    PushDevice.objects.create(user=user, platform="apns", token="iphone")
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "sent"
    assert len(fcm.requests) == 1


def test_without_an_apns_key_an_apple_only_person_is_not_sent(user, settings):
    settings.APNS_AUTH_KEY = ""
    PushDevice.objects.create(user=user, platform="apns", token="iphone")
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "not_sent"
    assert push_of(notification).reason == "push_not_configured"


def test_a_burst_of_expired_refusals_makes_one_new_provider_token(apple):
    refused = apns.PROVIDER_TOKENS.get()

    renewed = apns.PROVIDER_TOKENS.get(refused=refused)  # the first worker thread to hear "expired"
    assert renewed != refused
    assert apns.PROVIDER_TOKENS.get(refused=refused) == renewed  # the others signed with the old one too
