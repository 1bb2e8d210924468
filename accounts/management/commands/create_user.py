"""Create a patient, clinician or staff user from the command line (for operators and scripts)."""

import getpass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization, Role
from accounts.services import create_user


class Command(BaseCommand):
    help = "Create a user: --email, --role patient|clinician|staff, and a password (asked for if not given)."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", choices=Role.values, default=Role.PATIENT)
        parser.add_argument("--password", help="Taken from the prompt when left out.")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--organization", help="Clinicians: the organization's name (created if new).")
        parser.add_argument("--specialty", default="", help="Clinicians: their specialty.")

    def handle(self, *args, **options):
        password = options["password"]
        if password is None:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The two passwords do not match.")
        clinician = None
        if options["role"] == Role.CLINICIAN:
            organization = None
            if options["organization"]:
                organization, _ = Organization.objects.get_or_create(name=options["organization"])
            clinician = {"specialty": options["specialty"], "organization": organization}
        try:
            validate_password(password)
            user = create_user(
                email=options["email"],
                password=password,
                role=options["role"],
                first_name=options["first_name"],
                last_name=options["last_name"],
                clinician=clinician,
                email_verified=True,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Created {user.role} {user.email} ({user.pk})"))
