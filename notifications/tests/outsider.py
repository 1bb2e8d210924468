"""The notifications app's entries in the outsider registry (tests/test_outsider.py says what each key means)."""

from notifications.models import PushDevice
from notifications.tests.factories import NotificationFactory

API_ROUTES = {
    # A person's inbox is theirs alone: no grant reaches it (clinicians get their own notifications).
    "notification-list": {"make": lambda owner: NotificationFactory(recipient=owner, patient=owner), "scope": "any"},
    "notification-detail": {
        "make": lambda owner: NotificationFactory(recipient=owner, patient=owner),
        "scope": "any",
        "no_control": "an inbox is its recipient's alone: no grant reaches it",
        "body": {"is_read": True},
    },
    "notification-unread-count": {
        "make": lambda owner: NotificationFactory(recipient=owner, patient=owner),
        "scope": "any",
        "check": lambda body: body["unread"] == 0,
    },
    "notification-mark-all-read": {
        "make": lambda owner: NotificationFactory(recipient=owner, patient=owner),
        "scope": "any",
        "post": lambda owner, actor: {},
        "check": lambda body: body["unread"] == 0,
    },
}

API_ROUTES["notification-messages"] = {
    # Any active grant lets its clinician write to the patient; outsiders get 404 and the inbox stays as it was.
    "make": lambda owner: NotificationFactory(recipient=owner, patient=owner),
    "scope": "any",
    "post": lambda owner, actor: {"patient": str(owner.pk), "text": "An outsider's message"},
    "post_status": 404,
}


def _push_device(owner):
    return PushDevice.objects.create(user=owner, platform="fcm", token=f"owner-token-{owner.pk}")


API_ROUTES["push-device-list"] = {
    "make": _push_device,
    "scope": "any",
    "post": lambda owner, actor: {"platform": "fcm", "token": f"outsider-token-{actor.pk}"},
}
API_ROUTES["push-device-detail"] = {
    "make": _push_device,
    "scope": "any",
    "no_control": "a phone's token is its owner's alone: no grant reaches it",
}

NOT_PATIENT_SCOPED = {
    "notification-preferences": "the caller's own channels and quiet hours",
    # Webhook subscriptions belong to staff or to an organization, not to a patient; a patient has none and
    # creates none (403). Another organization's subscription is 404: notifications/tests/test_webhooks_api.py.
    "webhook-subscription-list": "staff's and organizations' webhook subscriptions, not a patient's data",
    "webhook-subscription-detail": "a staff or organization webhook subscription, not a patient's data",
    "webhook-subscription-deliveries": "a subscription's delivery log: ids and kinds, scoped to its organization",
    "webhook-subscription-rotate-secret": "a staff or organization subscription's signing secret",
    "notification-phone": "the caller's own verified phone (masked); no id in the path, no grant reaches it",
    "notification-phone-verify": "texts a code to the number the caller gives; acts on the caller's challenge only",
    "notification-phone-confirm": "confirms the caller's own challenge; nobody else's number can be verified",
}

OWNER_DATA = {"notifications.notification": "recipient"}

ADMIN_STAFF_ONLY = {
    "notifications.notification": "what was sent to whom: staff follow deliveries here; people read their inbox",
    "notifications.delivery": "channel attempts and errors, for staff",
    "notifications.preference": "a person's own channel choices",
    "notifications.quiethours": "a person's own quiet hours",
    "notifications.pushdevice": "a person's phones' push tokens",
    "notifications.digest": "when each person's daily digest went out, for staff",
    "notifications.options": "a person's own digest and emergency-contact choices",
    "notifications.escalationpolicy": "an organization's escalation time and on-call staff: set by staff",
    "notifications.escalation": "critical alerts' escalation steps, for staff (clinicians are told in their inbox)",
    "notifications.webhooksubscription": "partner systems' endpoints (never their secrets), for staff",
    "notifications.webhookdelivery": "webhook attempts and errors (ids and kinds only), for staff",
    "notifications.verifiedphone": "a person's verified number for texts (masked; codes are never shown)",
}


def _subscription(staff):
    from notifications.webhooks import create_subscription

    subscription, _ = create_subscription(
        owner=staff, organization_id=None, url="http://127.0.0.1:9/hook", kinds=["health_alert"]
    )
    return subscription


_WEBHOOK_BODY = {"url": "http://127.0.0.1:9/hook", "kinds": ["health_alert"]}
STAFF_WRITES = {
    "webhook-subscription-list": {"post": lambda patient, clinician: dict(_WEBHOOK_BODY)},
    "webhook-subscription-detail": {"make_staff": _subscription, "body": dict(_WEBHOOK_BODY)},
}
