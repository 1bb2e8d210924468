import factory
from django.utils import timezone

from accounts.models import CareTeamGrant, ClinicianProfile, Organization, Role, Scope, User

PASSWORD = "correct-Horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    role = Role.PATIENT

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, password=PASSWORD, **kwargs)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Clinic {n}")


class ClinicianFactory(UserFactory):
    role = Role.CLINICIAN
    clinician_profile = factory.RelatedFactory(
        "accounts.tests.factories.ClinicianProfileFactory", factory_related_name="user"
    )


class ClinicianProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClinicianProfile

    specialty = "Cardiology"
    organization = factory.SubFactory(OrganizationFactory)


class CareTeamGrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CareTeamGrant

    patient = factory.SubFactory(UserFactory)
    clinician = factory.SubFactory(ClinicianFactory)
    scopes = factory.LazyFunction(lambda: [Scope.METRICS])
    granted_at = factory.LazyFunction(timezone.now)
