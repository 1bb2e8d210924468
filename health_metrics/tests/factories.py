from datetime import timedelta

import factory
from django.utils import timezone

from accounts.tests.factories import UserFactory
from health_metrics.models import Reading, Target
from health_metrics.services import app_data_source


class ReadingFactory(factory.django.DjangoModelFactory):
    """A heart-rate reading (type id 2) an hour ago, stored as if through the API."""

    class Meta:
        model = Reading

    user = factory.SubFactory(UserFactory)
    data_source = factory.LazyAttribute(lambda o: app_data_source(user=o.user))  # their manual entries
    metric_type_id = 2
    value = 72.0
    original_value = factory.SelfAttribute("value")
    original_unit = "/min"
    recorded_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    utc_offset_minutes = 0
    local_date = factory.LazyAttribute(lambda o: o.recorded_at.date())


class TargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Target

    user = factory.SubFactory(UserFactory)
    metric_type_id = 27  # steps
    kind = "at_least"
    target_value = 8000
    start_date = factory.LazyFunction(timezone.localdate)


def set_timezone(user, name: str):
    """Give the user's profile an IANA time zone (their local calendar for days, weeks and months)."""
    user.profile.timezone = name
    user.profile.save(update_fields=["timezone"])
    return user
