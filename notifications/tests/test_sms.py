"""Text messages: to a verified number only, while it is the profile's phone; the code flow that verifies one;
and the HTTP backend against a fake Twilio-shaped provider served over HTTP on loopback."""

import base64
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

from accounts.models import Profile
from notifications.models import PhoneChallenge, VerifiedPhone
from notifications.services import deliver, notify
from notifications.sms import LocmemBackend, mask

pytestmark = pytest.mark.django_db

GLUCOSE = {"metric": "Blood glucose", "message": "Blood glucose 48 mg/dL, below 54.", "alert_id": "a1"}
NUMBER = "+15551234567"
NEUTRAL = "OpenVitals: an urgent health alert needs your attention. Open the app."


@pytest.fixture(autouse=True)
def outbox():
    LocmemBackend.outbox.clear()
    yield LocmemBackend.outbox
    LocmemBackend.outbox.clear()


def verify(user, number=NUMBER):
    VerifiedPhone.objects.create(user=user, number=number, verified_at=timezone.now())
    Profile.objects.filter(user=user).update(phone=number)


def sms_of(notification):
    return notification.deliveries.get(channel="sms")


# --- The channel ----------------------------------------------------------------------------------------------------


def test_a_text_goes_to_the_verified_number_with_the_neutral_text_and_a_link_never_the_value(user, outbox, settings):
    settings.FRONTEND_URL = "https://app.openvitals.example"
    verify(user)
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=sms_of(notification).pk) == "sent"

    (message,) = outbox
    assert message.to == NUMBER
    assert message.body == f"{NEUTRAL} https://app.openvitals.example/notifications/{notification.pk}"
    text = message.body.replace(str(notification.pk), "")  # a UUID may hold any digits
    assert "48" not in text
    assert "glucose" not in text.lower()


def test_an_unverified_number_gets_no_text(user, outbox):
    Profile.objects.filter(user=user).update(phone=NUMBER)  # on the profile, never verified
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=sms_of(notification).pk) == "not_sent"
    assert sms_of(notification).reason == "no_verified_phone"
    assert outbox == []


def test_a_changed_profile_phone_stops_texts_until_the_new_one_is_verified(user, outbox):
    verify(user)
    Profile.objects.filter(user=user).update(phone="+15559876543")
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=sms_of(notification).pk) == "not_sent"
    assert sms_of(notification).reason == "no_verified_phone"
    assert outbox == []


def test_the_profile_phone_may_be_written_with_spaces_and_dashes(user, outbox):
    verify(user)
    Profile.objects.filter(user=user).update(phone="+1 (555) 123-4567")
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=sms_of(notification).pk) == "sent"
    assert [message.to for message in outbox] == [NUMBER]


def test_the_log_backend_writes_a_masked_number_and_sends_nothing(user, outbox, settings, caplog):
    settings.SMS_BACKEND = "notifications.sms.LogBackend"
    verify(user)
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    with caplog.at_level("INFO"):
        assert deliver(delivery_id=sms_of(notification).pk) == "sent"

    assert outbox == []
    logged = caplog.text
    assert "sms_logged" in logged
    assert mask(NUMBER) in logged
    assert NUMBER not in logged


def test_a_number_is_masked_to_its_last_four_digits():
    assert mask("+15551234567") == "+1••••••4567"
    assert "1234" not in mask("+15551234567")


# --- The code flow --------------------------------------------------------------------------------------------------


def code_in(outbox):
    (message,) = outbox
    return message.body.split("code: ")[1][:6]


def test_a_code_sent_and_confirmed_verifies_the_number_and_makes_it_the_profiles_phone(user, as_user, outbox):
    assert as_user.get("/api/v1/notifications/phone/").json() == {
        "phone": None,
        "verified_at": None,
        "sms_active": False,
    }

    sent = as_user.post("/api/v1/notifications/phone/verify/", {"phone": "+1 555 123 4567"}, format="json")

    assert sent.status_code == 200
    assert sent.json()["phone"] == "+1••••••4567"
    assert [message.to for message in outbox] == [NUMBER]
    code = code_in(outbox)
    assert PhoneChallenge.objects.get(user=user).code_hash != code  # kept only as an HMAC
    assert code not in json.dumps(sent.json())

    confirmed = as_user.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": code}, format="json")

    assert confirmed.status_code == 200
    assert confirmed.json()["phone"] == "+1••••••4567"
    assert confirmed.json()["sms_active"] is True
    assert VerifiedPhone.objects.get(user=user).number == NUMBER
    assert Profile.objects.get(user=user).phone == NUMBER
    assert not PhoneChallenge.objects.filter(user=user).exists()  # spent
    again = as_user.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": code}, format="json")
    assert again.status_code == 400
    assert again.json()["errors"][0]["code"] == "no_code"


def test_the_phone_shows_as_not_active_after_the_profile_phone_changed(user, as_user):
    verify(user)
    Profile.objects.filter(user=user).update(phone="+447700900123")

    body = as_user.get("/api/v1/notifications/phone/").json()

    assert body["phone"] == "+1••••••4567"
    assert body["sms_active"] is False


def test_a_wrong_code_is_400_and_the_right_one_still_works(user, as_user, outbox):
    as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")
    code = code_in(outbox)
    wrong = "000000" if code != "000000" else "111111"

    response = as_user.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": wrong}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0] == {"code": "invalid_code", "detail": "The code is wrong.", "attr": "code"}
    assert not VerifiedPhone.objects.filter(user=user).exists()
    right = as_user.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": code}, format="json")
    assert right.status_code == 200


def test_an_expired_code_is_refused(user, as_user, outbox):
    as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")
    code = code_in(outbox)
    PhoneChallenge.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = as_user.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": code}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "code_expired"
    assert not VerifiedPhone.objects.filter(user=user).exists()


def test_a_code_expires_ten_minutes_after_it_is_sent(user, as_user):
    before = timezone.now()
    as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")

    challenge = PhoneChallenge.objects.get(user=user)
    assert before + timedelta(minutes=10) <= challenge.expires_at <= timezone.now() + timedelta(minutes=10)


def test_after_five_wrong_codes_even_the_right_one_needs_a_new_code(user, as_user, outbox):
    as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")
    code = code_in(outbox)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        response = as_user.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": wrong}, format="json")
        assert response.json()["errors"][0]["code"] == "invalid_code"

    response = as_user.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": code}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "too_many_attempts"
    assert not VerifiedPhone.objects.filter(user=user).exists()
    outbox.clear()
    as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")
    fresh = code_in(outbox)
    ok = as_user.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": fresh}, format="json")
    assert ok.status_code == 200


def test_a_code_confirms_only_the_number_it_was_sent_to(user, as_user, outbox):
    as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")
    code = code_in(outbox)

    response = as_user.post(
        "/api/v1/notifications/phone/confirm/", {"phone": "+15550000000", "code": code}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "no_code"


def test_a_code_is_never_another_persons(user, other_user, as_user, api_client, outbox):
    as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")
    code = code_in(outbox)
    from conftest import bearer

    other = bearer(api_client, other_user)
    response = other.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": code}, format="json")

    assert response.status_code == 400
    assert not VerifiedPhone.objects.exists()


@pytest.mark.parametrize("phone", ["5551234567", "+0551234567", "+1555", "+1555123456789012", "call me"])
def test_a_number_not_in_e164_is_400_naming_the_problem(as_user, outbox, phone):
    response = as_user.post("/api/v1/notifications/phone/verify/", {"phone": phone}, format="json")

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["code"], error["attr"]) == ("invalid_phone", "phone")
    assert "E.164" in error["detail"]
    assert outbox == []


def test_asking_for_codes_is_throttled_per_person(as_user, outbox, settings):
    settings.PHONE_THROTTLE_RATES = {**settings.PHONE_THROTTLE_RATES, "phone_verify": "2/hour"}
    for _ in range(2):
        assert as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json").status_code == 200

    response = as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")

    assert response.status_code == 429
    assert "Retry-After" in response.headers
    assert len(outbox) == 2


def test_forgetting_the_phone_stops_texts(user, as_user, outbox):
    verify(user)

    assert as_user.delete("/api/v1/notifications/phone/").status_code == 204

    assert not VerifiedPhone.objects.filter(user=user).exists()
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)
    assert deliver(delivery_id=sms_of(notification).pk) == "not_sent"


# --- The HTTP backend, against a fake provider ----------------------------------------------------------------------


class FakeSmsProvider:
    """Answers `POST /2010-04-01/Accounts/<sid>/Messages.json` as Twilio does: 401 on wrong basic auth, else
    `answer` (status, JSON body), by default 201 with a message sid."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answer: tuple[int, dict] = (201, {"sid": "SM123", "status": "queued"})
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                auth = base64.b64decode(self.headers["Authorization"].removeprefix("Basic ")).decode()
                fake.requests.append({"path": self.path, "auth": auth, "form": {k: v[0] for k, v in form.items()}})
                status, body = fake.answer if auth == "AC123:secret-token" else (401, {"code": 20003})
                payload = json.dumps(body).encode()
                self.send_response(status)
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
def provider(settings):
    fake = FakeSmsProvider()
    settings.SMS_BACKEND = "notifications.sms.HttpBackend"
    settings.SMS_HTTP_ENDPOINT, settings.SMS_ACCOUNT_SID = fake.url, "AC123"
    settings.SMS_AUTH_TOKEN, settings.SMS_FROM = "secret-token", "+15005550006"
    yield fake
    fake.close()


def test_the_http_backend_posts_to_the_providers_messages_api(user, provider):
    verify(user)
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=sms_of(notification).pk) == "sent"

    (sent,) = provider.requests
    assert sent["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert sent["auth"] == "AC123:secret-token"
    assert sent["form"]["To"] == NUMBER
    assert sent["form"]["From"] == "+15005550006"
    assert sent["form"]["Body"].startswith(NEUTRAL)
    assert "48" not in sent["form"]["Body"].replace(str(notification.pk), "")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_the_provider_busy_or_down_is_retried_later(user, provider, status):
    provider.answer = (status, {"code": 20429, "message": "Too Many Requests"})
    verify(user)
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=sms_of(notification).pk) == "queued"
    assert f"SMS provider {status}" in sms_of(notification).last_error


def test_the_provider_refusing_the_message_fails_it(user, provider):
    provider.answer = (400, {"code": 21211, "message": "The 'To' number is not a valid phone number."})
    verify(user)
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=sms_of(notification).pk) == "failed"
    assert sms_of(notification).reason == "sms_400_21211"


def test_a_code_goes_through_the_http_backend_too(as_user, provider):
    response = as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")

    assert response.status_code == 200
    (sent,) = provider.requests
    assert sent["form"]["To"] == NUMBER
    assert "OpenVitals code: " in sent["form"]["Body"]


def test_a_code_the_provider_cannot_take_now_is_503_and_no_code_is_kept(user, as_user, provider):
    provider.answer = (503, {"code": 20503, "message": "Service Unavailable"})
    as_user.raise_request_exception = False  # a 5xx is reported to error monitoring, as it should be

    response = as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")

    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "sms_unavailable"
    assert not PhoneChallenge.objects.filter(user=user).exists()


def test_from_code_to_text_and_a_phone_changed_in_the_profile_stops_texts(user, as_user, outbox):
    as_user.post("/api/v1/notifications/phone/verify/", {"phone": NUMBER}, format="json")
    as_user.post("/api/v1/notifications/phone/confirm/", {"phone": NUMBER, "code": code_in(outbox)}, format="json")
    outbox.clear()
    (first,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)
    assert deliver(delivery_id=sms_of(first).pk) == "sent"
    assert [message.to for message in outbox] == [NUMBER]

    changed = as_user.patch("/api/v1/auth/profile/", {"profile": {"phone": "+44 7700 900123"}}, format="json")

    assert changed.status_code == 200
    (second,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)
    assert deliver(delivery_id=sms_of(second).pk) == "not_sent"
    assert sms_of(second).reason == "no_verified_phone"
    assert len(outbox) == 1
    assert as_user.get("/api/v1/notifications/phone/").json()["sms_active"] is False
