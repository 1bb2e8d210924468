"""Push through FCM HTTP v1, against a fake FCM served over HTTP on loopback by the test."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from notifications.models import PushDevice
from notifications.services import deliver, notify, purge_idle_push_devices

pytestmark = pytest.mark.django_db

GLUCOSE = {"metric": "Blood glucose", "message": "Blood glucose 48 mg/dL, below 54.", "alert_id": "a1"}


class FakeFCM:
    """Answers `POST /v1/projects/<id>/messages:send` as FCM does; `answers` maps a token to (status, body)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: dict[str, tuple[int, dict]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
                token = body["message"]["token"]
                status, answer = fake.answers.get(
                    token, (200, {"name": f"projects/demo/messages/{len(fake.requests)}"})
                )
                payload = json.dumps(answer).encode()
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
def fcm(settings):
    fake = FakeFCM()
    settings.FCM_ENDPOINT, settings.FCM_PROJECT_ID, settings.FCM_ACCESS_TOKEN = fake.url, "demo", "test-access-token"
    yield fake
    fake.close()


def push_of(notification):
    return notification.deliveries.get(channel="push")


def test_a_push_carries_the_neutral_text_and_ids_never_the_value(user, fcm):
    PushDevice.objects.create(user=user, platform="fcm", token="phone-1")
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "sent"

    (sent,) = fcm.requests
    assert sent["path"] == "/v1/projects/demo/messages:send"
    assert sent["auth"] == "Bearer test-access-token"
    message = sent["body"]["message"]
    assert message["token"] == "phone-1"
    assert message["data"] == {"notification_id": str(notification.pk), "kind": "health_alert_critical"}
    shown = json.dumps(message["notification"])
    assert "48" not in shown
    assert "glucose" not in shown.lower()


def test_a_token_fcm_calls_unregistered_is_deleted_and_the_others_still_get_it(user, fcm):
    PushDevice.objects.create(user=user, platform="fcm", token="old-phone")
    PushDevice.objects.create(user=user, platform="fcm", token="new-phone")
    fcm.answers["old-phone"] = (
        404,
        {"error": {"code": 404, "status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}},
    )
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "sent"
    assert list(PushDevice.objects.values_list("token", flat=True)) == ["new-phone"]


def test_fcm_unavailable_is_retried_later(user, fcm):
    PushDevice.objects.create(user=user, platform="fcm", token="phone-1")
    fcm.answers["phone-1"] = (503, {"error": {"code": 503, "status": "UNAVAILABLE"}})
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "queued"
    delivery = push_of(notification)
    assert delivery.next_attempt_at > timezone.now()
    assert "FCM 503" in delivery.last_error


def test_no_device_means_not_sent(user, fcm):
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=push_of(notification).pk) == "not_sent"
    assert push_of(notification).reason == "no_push_device"
    assert fcm.requests == []


def test_devices_idle_for_270_days_are_forgotten(user):
    idle = PushDevice.objects.create(user=user, platform="fcm", token="drawer-phone")
    PushDevice.objects.filter(pk=idle.pk).update(last_used_at=timezone.now() - timedelta(days=271))
    PushDevice.objects.create(user=user, platform="fcm", token="pocket-phone")

    assert purge_idle_push_devices() == 1
    assert list(PushDevice.objects.values_list("token", flat=True)) == ["pocket-phone"]


def test_a_token_registered_again_moves_to_the_caller_and_is_never_shown(as_user, user, other_user):
    PushDevice.objects.create(user=other_user, platform="fcm", token="shared-phone-token")

    response = as_user.post(
        "/api/v1/notifications/push-devices/", {"platform": "fcm", "token": "shared-phone-token"}, format="json"
    )

    assert response.status_code == 201
    assert "token" not in response.json()
    assert response.json()["token_end"] == "-token"
    assert PushDevice.objects.get(token="shared-phone-token").user == user
    assert as_user.delete(f"/api/v1/notifications/push-devices/{response.json()['id']}/").status_code == 204
    bad = as_user.post("/api/v1/notifications/push-devices/", {"platform": "pager", "token": "x"}, format="json")
    assert bad.status_code == 400
