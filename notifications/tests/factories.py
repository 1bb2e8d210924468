import factory

from accounts.tests.factories import UserFactory
from notifications.models import Notification


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(UserFactory)
    kind = "health_alert"
    severity = "warning"
    title = "Alert: Heart rate"
    body = "Heart rate above 120 /min for 10 minutes."
