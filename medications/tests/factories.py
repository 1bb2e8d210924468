from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.tests.factories import UserFactory
from medications.models import Dose, DoseStatus, DrugClass, Ingredient, Medication, MedicationPlan, PlanRevision


class DrugClassFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DrugClass
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"test-class-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())
    source = "test"


class IngredientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ingredient
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"testamine {n}")
    source = "test"


class MedicationFactory(factory.django.DjangoModelFactory):
    """A catalog product with one new ingredient (pass `ingredients=[...]` to choose)."""

    class Meta:
        model = Medication
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Testamine {n} 10 MG Oral Tablet")
    generic_name = factory.LazyAttribute(lambda o: o.name)
    form = "tablet"
    strength = "10 mg"
    source = "test"

    @factory.post_generation
    def ingredients(self, create, extracted, **kwargs):
        if not create:
            return
        self.ingredients.set(extracted if extracted is not None else [IngredientFactory()])


class MedicationPlanFactory(factory.django.DjangoModelFactory):
    """An active free-text plan: one tablet at 08:00 local every day from today, 30 in stock."""

    class Meta:
        model = MedicationPlan

    patient = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Medicine {n}")
    dose = Decimal(1)
    dose_unit = "tablet"
    times = factory.LazyFunction(lambda: ["08:00"])
    start_date = factory.LazyFunction(lambda: timezone.now().astimezone(UTC).date())
    stock = Decimal(30)
    created_by = factory.SelfAttribute("patient")


class PlanRevisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlanRevision

    plan = factory.SubFactory(MedicationPlanFactory)
    number = factory.Sequence(lambda n: n + 1)
    actor = factory.SelfAttribute("plan.patient")
    changes = factory.LazyFunction(lambda: {"name": [None, "Medicine"]})


def at(day_offset: int = 0, hour: int = 8, minute: int = 0) -> datetime:
    """A UTC instant `day_offset` days from today at hour:minute."""
    day = timezone.now().astimezone(UTC).date() + timedelta(days=day_offset)
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


class DoseFactory(factory.django.DjangoModelFactory):
    """A scheduled dose of a new plan, tomorrow at 08:00 UTC."""

    class Meta:
        model = Dose

    plan = factory.SubFactory(MedicationPlanFactory)
    patient = factory.SelfAttribute("plan.patient")
    scheduled_at = factory.LazyFunction(lambda: at(1))
    local_date = factory.LazyAttribute(lambda o: o.scheduled_at.date() if o.scheduled_at else timezone.now().date())
    status = DoseStatus.SCHEDULED
    quantity = factory.SelfAttribute("plan.dose")
