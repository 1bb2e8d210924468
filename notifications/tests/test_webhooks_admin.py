"""The webhook admin: staff follow subscriptions and their delivery log, never see a secret, turn them on and off."""

import pytest

from notifications.models import Notification, WebhookDelivery, WebhookSubscription
from notifications.webhooks import create_subscription, rotate_secret

pytestmark = pytest.mark.django_db

PUBLIC = "https://93.184.215.14/hooks"


def test_staff_see_subscriptions_and_deliveries_without_secrets_and_toggle_them(client, staff):
    subscription, secret = create_subscription(owner=staff, organization_id=None, url=PUBLIC, kinds=["message"])
    previous = secret
    secret = rotate_secret(subscription=subscription)
    WebhookDelivery.objects.create(subscription=subscription, message_id="msg_1", kind="message", payload={})
    client.force_login(staff)
    pages = [
        "/admin/notifications/webhooksubscription/",
        f"/admin/notifications/webhooksubscription/{subscription.pk}/change/",
        f"/admin/notifications/webhookdelivery/?subscription__id__exact={subscription.pk}",
        f"/admin/notifications/webhookdelivery/{WebhookDelivery.objects.get().pk}/change/",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        text = response.content.decode()
        for value in (secret, previous, subscription.secret_encrypted, subscription.previous_secret_encrypted):
            assert value not in text, page
    assert "msg_1" in client.get(pages[2]).content.decode()

    changelist = pages[0]
    client.post(changelist, {"action": "disable", "_selected_action": [str(subscription.pk)]})
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert Notification.objects.filter(recipient=staff, kind="webhook_disabled").count() == 1
    WebhookSubscription.objects.filter(pk=subscription.pk).update(consecutive_failures=3)
    client.post(changelist, {"action": "enable", "_selected_action": [str(subscription.pk)]})
    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.consecutive_failures, subscription.disabled_reason) == (True, 0, "")
