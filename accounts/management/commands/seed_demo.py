"""A realistic demo: a staff admin, clinicians in two organizations, patients with profiles, consent.

Safe to run twice: what exists already (by email, by name, by open grant) is left as it is.
"""

from datetime import date, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import CareTeamGrant, Organization, OrganizationKind, Role, Scope, User
from accounts.services import create_user

DEMO_PASSWORD = "OpenVitals-demo-2026"

ORGANIZATIONS = [
    {"name": "Riverside General Hospital", "kind": OrganizationKind.HOSPITAL, "phone": "+1 555 0100"},
    {"name": "Harbor Family Clinic", "kind": OrganizationKind.CLINIC, "phone": "+1 555 0200"},
]

STAFF = [{"email": "admin@openvitals.local", "first_name": "Ada", "last_name": "Admin"}]

CLINICIANS = [
    {"email": "dr.chen@openvitals.local", "first_name": "Mei", "last_name": "Chen",
     "specialty": "Cardiology", "organization": "Riverside General Hospital", "license_number": "MD-40211"},
    {"email": "dr.okafor@openvitals.local", "first_name": "Chidi", "last_name": "Okafor",
     "specialty": "Endocrinology", "organization": "Riverside General Hospital", "license_number": "MD-51877"},
    {"email": "dr.silva@openvitals.local", "first_name": "Rosa", "last_name": "Silva",
     "specialty": "Family medicine", "organization": "Harbor Family Clinic", "license_number": "MD-60932"},
]  # fmt: skip

PATIENTS = [
    {
        "email": "alice@openvitals.local", "first_name": "Alice", "last_name": "Moreau",
        "profile": {"date_of_birth": date(1968, 4, 12), "sex": "female", "height_cm": 165,
                    "blood_type": "A+", "conditions": ["Hypertension"], "allergies": ["Penicillin"],
                    "timezone": "America/New_York", "preferred_units": "imperial"},
        "contacts": [{"name": "Louis Moreau", "relation": "spouse", "phone": "+1 555 0111"}],
    },
    {
        "email": "bob@openvitals.local", "first_name": "Bob", "last_name": "Nakamura",
        "profile": {"date_of_birth": date(1975, 9, 3), "sex": "male", "height_cm": 178,
                    "blood_type": "O+", "conditions": ["Type 2 diabetes"], "allergies": [],
                    "timezone": "America/Los_Angeles", "preferred_units": "imperial"},
        "contacts": [{"name": "Kei Nakamura", "relation": "sibling", "phone": "+1 555 0122"}],
    },
    {
        "email": "carmen@openvitals.local", "first_name": "Carmen", "last_name": "Ruiz",
        "profile": {"date_of_birth": date(1990, 1, 27), "sex": "female", "height_cm": 158,
                    "blood_type": "B-", "conditions": ["Asthma"], "allergies": ["Peanuts"],
                    "timezone": "Europe/Madrid", "preferred_units": "metric"},
        "contacts": [{"name": "Javier Ruiz", "relation": "parent", "phone": "+34 600 000 123"}],
    },
    {
        "email": "dev@openvitals.local", "first_name": "Dev", "last_name": "Patel",
        "profile": {"date_of_birth": date(1988, 6, 30), "sex": "male", "height_cm": 182,
                    "blood_type": "AB+", "conditions": [], "allergies": [],
                    "timezone": "Pacific/Auckland", "preferred_units": "metric"},
        "contacts": [],
    },
]  # fmt: skip

GRANTS = [
    (
        "alice@openvitals.local",
        "dr.chen@openvitals.local",
        [Scope.METRICS, Scope.MEDICATIONS, Scope.APPOINTMENTS],
        None,
    ),
    ("bob@openvitals.local", "dr.okafor@openvitals.local", [Scope.METRICS, Scope.MEDICATIONS], None),
    ("bob@openvitals.local", "dr.silva@openvitals.local", [Scope.APPOINTMENTS], 90),
    ("carmen@openvitals.local", "dr.silva@openvitals.local", [Scope.METRICS, Scope.APPOINTMENTS], None),
]


class Command(BaseCommand):
    help = "Seed demo users, organizations, profiles and care-team grants (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any user exists.")

    def handle(self, *args, **options):
        if options["if_empty"] and User.objects.exists():
            self.stdout.write("Users exist already; demo not seeded (run `python manage.py seed_demo` to top it up).")
            self.print_logins()
            return
        with transaction.atomic():
            self.seed()
        for path in settings.DEMO_SEEDERS:  # other apps' demo data, once the people exist
            with transaction.atomic():
                import_string(path)(stdout=self.stdout)
        self.print_logins()

    def seed(self) -> None:
        made = {"organizations": 0, "users": 0, "care-team grants": 0}
        for spec in ORGANIZATIONS:
            _, created = Organization.objects.get_or_create(name=spec["name"], defaults=spec)
            made["organizations"] += created
        people = [(Role.STAFF, s) for s in STAFF] + [(Role.CLINICIAN, c) for c in CLINICIANS]
        people += [(Role.PATIENT, p) for p in PATIENTS]
        for index, (role, spec) in enumerate(people, start=1):
            self.stdout.write(f"  [{index}/{len(people)}] {role:<9} {spec['email']}", ending="")
            if User.objects.filter(email=spec["email"]).exists():
                self.stdout.write(" (exists)")
                continue
            clinician = None
            if role == Role.CLINICIAN:
                clinician = {
                    "specialty": spec["specialty"],
                    "license_number": spec["license_number"],
                    "organization": Organization.objects.get(name=spec["organization"]),
                }
            create_user(
                email=spec["email"],
                password=DEMO_PASSWORD,
                role=role,
                first_name=spec["first_name"],
                last_name=spec["last_name"],
                profile=spec.get("profile"),
                emergency_contacts=spec.get("contacts"),
                clinician=clinician,
                email_verified=True,
            )
            made["users"] += 1
            self.stdout.write(" (created)")
        for patient_email, clinician_email, scopes, days in GRANTS:
            patient = User.objects.get(email=patient_email)
            clinician = User.objects.get(email=clinician_email)
            if CareTeamGrant.objects.active().filter(patient=patient, clinician=clinician).exists():
                continue
            CareTeamGrant.objects.create(
                patient=patient,
                clinician=clinician,
                scopes=sorted(scopes),
                expires_at=timezone.now() + timedelta(days=days) if days else None,
            )
            made["care-team grants"] += 1
        summary = ", ".join(f"{count} {what}" for what, count in made.items())
        self.stdout.write(self.style.SUCCESS(f"Seeded {summary} (existing rows left as they were)."))

    def print_logins(self) -> None:
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
        self.stdout.write(f"  staff (admin)  {STAFF[0]['email']}")
        for spec in CLINICIANS:
            self.stdout.write(f"  clinician      {spec['email']:<30} {spec['specialty']}, {spec['organization']}")
        for spec in PATIENTS:
            self.stdout.write(f"  patient        {spec['email']}")
