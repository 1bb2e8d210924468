"""Demo appointments (settings.DEMO_SEEDERS): the demo clinicians as providers with their types, weekly hours, a
holiday and an extra Saturday clinic, and bookings for the demo patients: past ones (completed with the
provider's notes, a no-show, a cancellation) and upcoming ones (requested, and confirmed by the provider).

Upcoming bookings go through services.book_appointment (the one guarded path) and services.change_status; past
ones cannot (nothing books the past), so they are written as rows with the events a real history would have,
at distinct times per provider and in statuses that hold no time (the exclusion constraint covers only
requested and confirmed).

Safe to run twice: providers, types and hours are made once; overrides and bookings only for a provider that has
none yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts.models import User

from . import selectors, services
from .models import (
    Appointment,
    AppointmentEvent,
    AppointmentStatus,
    AppointmentType,
    DateOverride,
    OverrideKind,
    Provider,
    WorkingHours,
)

S = AppointmentStatus

PROVIDERS = {
    "dr.chen@openvitals.local": {
        "bio": "Cardiologist with twenty years in hypertension and heart-failure care; prefers shared decisions.",
        "languages": ["en", "zh"],
        "timezone": "America/New_York",
        "buffer_before_minutes": 5,
        "buffer_after_minutes": 10,
        "types": [("Cardiology consultation", 45, False), ("Follow-up", 20, False), ("Video check-in", 20, True)],
        "hours": [(day, time(9), time(12)) for day in range(5)] + [(day, time(13), time(17)) for day in (0, 2, 3)],
    },
    "dr.okafor@openvitals.local": {
        "bio": "Endocrinologist: diabetes, thyroid and metabolic care, with CGM data reviewed at every visit.",
        "languages": ["en", "ig"],
        "timezone": "America/New_York",
        "buffer_before_minutes": 0,
        "buffer_after_minutes": 10,
        "types": [("Diabetes review", 30, False), ("Video follow-up", 15, True)],
        "hours": [(day, time(8), time(12)) for day in (0, 1, 3)] + [(day, time(13), time(16)) for day in (1, 4)],
    },
    "dr.silva@openvitals.local": {
        "bio": "Family physician for all ages; asthma plans, prevention and everyday care.",
        "languages": ["en", "es", "pt"],
        "timezone": "America/Los_Angeles",
        "buffer_before_minutes": 5,
        "buffer_after_minutes": 5,
        "types": [("Family visit", 30, False), ("Telehealth visit", 20, True)],
        "hours": [(day, time(8, 30), time(12, 30)) for day in range(5)] + [(day, time(14), time(18)) for day in (1, 3)],
    },
}


@dataclass(frozen=True)
class Past:
    patient: str
    provider: str
    kind: str
    days_ago: int
    at: time  # the provider's local time
    status: str
    reason: str
    notes: str = ""
    diagnosis: str = ""
    plan: str = ""


PAST = [
    Past("alice@openvitals.local", "dr.chen@openvitals.local", "Cardiology consultation", 62, time(9, 30), S.COMPLETED,
         "Blood pressure readings high at home",
         notes="Home BP averages 146/92 over two weeks. No chest pain, no dyspnoea. ECG: sinus rhythm.",
         diagnosis="Essential hypertension, stage 2",
         plan="Start lisinopril 10 mg daily; home readings twice a day; follow-up in 4 weeks."),
    Past("alice@openvitals.local", "dr.chen@openvitals.local", "Follow-up", 20, time(10), S.COMPLETED,
         "Three-week follow-up on lisinopril",
         notes="Home BP now averages 132/84. Mild dry cough, tolerable.",
         diagnosis="Essential hypertension, improving",
         plan="Continue lisinopril 10 mg; recheck in 3 months; report a worsening cough."),
    Past("bob@openvitals.local", "dr.okafor@openvitals.local", "Diabetes review", 41, time(8, 30), S.COMPLETED,
         "Quarterly diabetes review",
         notes="HbA1c 7.4 %. Fasting glucose mostly 120-150 mg/dL. Feet: normal sensation.",
         diagnosis="Type 2 diabetes, suboptimal control",
         plan="Metformin to 1000 mg twice daily; CGM trial for 14 days; dietitian referral."),
    Past("bob@openvitals.local", "dr.silva@openvitals.local", "Family visit", 16, time(9), S.NO_SHOW,
         "Annual physical"),
    Past("carmen@openvitals.local", "dr.silva@openvitals.local", "Telehealth visit", 9, time(10, 30), S.CANCELLED,
         "Inhaler refill and asthma plan"),
    Past("dev@openvitals.local", "dr.chen@openvitals.local", "Video check-in", 12, time(11), S.COMPLETED,
         "Palpitations after exercise",
         notes="Occasional palpitations after running; none at rest. Resting HR 58, regular.",
         diagnosis="Benign exertional palpitations",
         plan="No treatment; 24-hour Holter if it recurs; reduce caffeine."),
]  # fmt: skip

# (patient, provider, type, days ahead, which free slot of that day, confirmed by the provider, reason)
UPCOMING = [
    ("alice@openvitals.local", "dr.chen@openvitals.local", "Follow-up", 5, 1, True, "Three-month blood pressure check"),
    ("bob@openvitals.local", "dr.okafor@openvitals.local", "Video follow-up", 3, 2, True, "Review the CGM data"),
    ("bob@openvitals.local", "dr.silva@openvitals.local", "Family visit", 8, 0, False, "Annual physical (rebooked)"),
    ("carmen@openvitals.local", "dr.silva@openvitals.local", "Telehealth visit", 4, 3, False, "Asthma plan review"),
    ("dev@openvitals.local", "dr.chen@openvitals.local", "Video check-in", 11, 0, False, "Holter results"),
]


def _weekday_on_or_before(day: date) -> date:
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _provider(user: User, spec: dict, stdout) -> tuple[Provider, bool]:  # noqa: ANN001
    fields = {k: spec[k] for k in ("bio", "languages", "timezone", "buffer_before_minutes", "buffer_after_minutes")}
    provider, created = Provider.objects.get_or_create(user=user, defaults=fields)
    for name, minutes, telemedicine in spec["types"]:
        AppointmentType.objects.get_or_create(
            provider=provider, name=name, defaults={"duration_minutes": minutes, "telemedicine": telemedicine}
        )
    if not provider.working_hours.exists():
        WorkingHours.objects.bulk_create(
            WorkingHours(provider=provider, weekday=day, start=start, end=end) for day, start, end in spec["hours"]
        )
    if not provider.date_overrides.exists():
        today = timezone.now().astimezone(ZoneInfo(provider.timezone)).date()
        holiday = _weekday_on_or_before(today + timedelta(days=14))
        saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
        DateOverride.objects.bulk_create(
            [
                DateOverride(provider=provider, date=holiday, kind=OverrideKind.UNAVAILABLE, note="Public holiday"),
                DateOverride(
                    provider=provider,
                    date=saturday,
                    kind=OverrideKind.EXTRA,
                    start=time(9),
                    end=time(12),
                    note="Extra Saturday clinic",
                ),
            ]
        )
    stdout.write(f"  provider {user.email}: {'created' if created else 'exists'}")
    return provider, created


def _past(spec: Past, people: dict[str, User], providers: dict[str, Provider], now: datetime) -> None:
    provider = providers[spec.provider]
    kind = provider.appointment_types.get(name=spec.kind)
    zone = ZoneInfo(provider.timezone)
    day = _weekday_on_or_before(now.astimezone(zone).date() - timedelta(days=spec.days_ago))
    starts_at = datetime.combine(day, spec.at, tzinfo=zone)
    rules = selectors.rules_for(provider=provider, appointment_type=kind)
    blocked_start, blocked_end = rules.blocked(starts_at)
    patient, clinician = people[spec.patient], provider.user
    booked_at = starts_at - timedelta(days=10)
    trail = {
        S.COMPLETED: [(S.REQUESTED, S.CONFIRMED, clinician), (S.CONFIRMED, S.CHECKED_IN, clinician),
                      (S.CHECKED_IN, S.COMPLETED, clinician)],
        S.NO_SHOW: [(S.REQUESTED, S.CONFIRMED, clinician), (S.CONFIRMED, S.NO_SHOW, clinician)],
        S.CANCELLED: [(S.REQUESTED, S.CANCELLED, patient)],
    }[spec.status]  # fmt: skip
    last_actor = trail[-1][2]
    appointment = Appointment.objects.create(
        patient=patient,
        provider=clinician,
        appointment_type=kind,
        starts_at=starts_at,
        ends_at=starts_at + rules.duration,
        blocked_start=blocked_start,
        blocked_end=blocked_end,
        status=spec.status,
        reason=spec.reason,
        telemedicine=kind.telemedicine,
        booked_by=patient,
        status_changed_at=starts_at + rules.duration if spec.status != S.CANCELLED else starts_at - timedelta(days=2),
        status_changed_by=last_actor,
        notes=spec.notes,
        diagnosis=spec.diagnosis,
        plan=spec.plan,
    )
    Appointment.objects.filter(pk=appointment.pk).update(created_at=booked_at)
    events = [AppointmentEvent(appointment=appointment, actor=patient, at=booked_at, to_status=S.REQUESTED)]
    moments = {S.CONFIRMED: booked_at + timedelta(hours=3), S.CHECKED_IN: starts_at - timedelta(minutes=10),
               S.COMPLETED: starts_at + rules.duration, S.NO_SHOW: starts_at + timedelta(minutes=20),
               S.CANCELLED: starts_at - timedelta(days=2)}  # fmt: skip
    events += [
        AppointmentEvent(appointment=appointment, actor=actor, at=moments[to], from_status=source, to_status=to)
        for source, to, actor in trail
    ]
    AppointmentEvent.objects.bulk_create(events)


def _upcoming(spec: tuple, people: dict[str, User], providers: dict[str, Provider], now: datetime) -> Appointment:
    patient_email, provider_email, kind_name, days, index, confirm, reason = spec
    provider = providers[provider_email]
    kind = provider.appointment_types.get(name=kind_name)
    day = now.astimezone(ZoneInfo(provider.timezone)).date() + timedelta(days=days)
    slots = selectors.provider_slots(
        provider=provider, appointment_type=kind, start_date=day, end_date=day + timedelta(days=7), now=now
    )
    patient = people[patient_email]
    appointment = services.book_appointment(
        patient=patient,
        provider=provider,
        appointment_type=kind,
        starts_at=slots[min(index, len(slots) - 1)],
        reason=reason,
        booked_by=patient,
        now=now,
    )
    if confirm:
        services.change_status(appointment=appointment, action="confirm", actor=provider.user, now=now)
    return appointment


def seed_demo_appointments(*, stdout) -> None:  # noqa: ANN001
    now = timezone.now()
    people = {u.email: u for u in User.objects.filter(email__endswith="@openvitals.local")}
    providers, fresh = {}, set()
    for email, spec in PROVIDERS.items():
        if email not in people:
            continue
        providers[email], created = _provider(people[email], spec, stdout)
        if not Appointment.objects.filter(provider=people[email]).exists():
            fresh.add(email)
    past = [spec for spec in PAST if spec.provider in fresh and spec.patient in people]
    for spec in past:
        _past(spec, people, providers, now)
    upcoming = [spec for spec in UPCOMING if spec[1] in fresh and spec[0] in people]
    for spec in upcoming:
        _upcoming(spec, people, providers, now)
    stdout.write(
        f"  appointments: {len(past)} past and {len(upcoming)} upcoming created "
        f"({len(providers) - len(fresh)} providers had bookings already)"
    )
