"""Our readings, users, appointments, providers' schedules and medication plans as FHIR R4 resources (plain JSON
dicts), for the FHIR read API and the exports.

Pure functions: they read the rows they are given and query nothing, so a caller that pages or streams
readings controls the queries (load readings with `select_related("metric_type")`, users with "profile",
appointments with "patient", "provider" and "appointment_type", providers with "user", medication plans through
`plans_for_fhir`, which only builds their query).

The shapes follow FHIR R4 (4.0.1). The tests validate them with fhir.resources 8.x, whose top-level package
is R5 and which ships no R4 package; its `R4B` models (4.3.0) are the closest: Observation, Patient, Bundle
and OperationOutcome are unchanged between R4 and R4B, while R5 renamed and added elements.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from accounts.models import User
from appointments.models import Appointment, AppointmentStatus, AppointmentType, Provider
from health_metrics.display import round_value
from health_metrics.models import MetricType, Reading
from medications.models import Dose, DoseStatus, MedicationPlan, PlanStatus, Route

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# Our own code system: every metric type's catalog code, so types without a LOINC code have a code too.
METRIC_TYPE_SYSTEM = "https://openvitals.org/fhir/CodeSystem/metric-type"
# Our own code systems for appointments: each provider's appointment types (code: the type's id), and how a
# visit happens (R4 has no element for a video visit; R5 added virtualService).
APPOINTMENT_TYPE_SYSTEM = "https://openvitals.org/fhir/CodeSystem/appointment-type"
VISIT_MODE_SYSTEM = "https://openvitals.org/fhir/CodeSystem/visit-mode"

CATEGORY_DISPLAY = {
    "vital-signs": "Vital Signs",
    "laboratory": "Laboratory",
    "activity": "Activity",
    "exam": "Exam",
    "survey": "Survey",
    "social-history": "Social History",
}
# The observation category of each catalog type (health_metrics/data/metric_catalog.csv); a test checks that
# every catalog code is here. vital-signs: the FHIR vital-signs set and its close kin; laboratory: blood
# chemistry; activity: what a wearable counts, sleep included (the category's own definition); exam: readings
# of simple instruments; survey: self-reported scores; social-history: diet and intake (lifestyle).
CATEGORY_BY_TYPE = {
    "blood_pressure": "vital-signs",
    "heart_rate": "vital-signs",
    "resting_heart_rate": "vital-signs",
    "respiratory_rate": "vital-signs",
    "oxygen_saturation": "vital-signs",
    "body_temperature": "vital-signs",
    "body_weight": "vital-signs",
    "body_height": "vital-signs",
    "bmi": "vital-signs",
    "head_circumference": "vital-signs",
    "mean_arterial_pressure": "vital-signs",
    "blood_glucose": "laboratory",
    "glucose_cgm": "laboratory",
    "hba1c": "laboratory",
    "cholesterol_total": "laboratory",
    "cholesterol_hdl": "laboratory",
    "cholesterol_ldl": "laboratory",
    "triglycerides": "laboratory",
    "steps": "activity",
    "distance_walking_running": "activity",
    "active_energy_burned": "activity",
    "calories_burned": "activity",
    "flights_climbed": "activity",
    "exercise_minutes": "activity",
    "vo2_max": "activity",
    "sleep_duration": "activity",
    "sleep_deep": "activity",
    "sleep_light": "activity",
    "sleep_rem": "activity",
    "sleep_score": "activity",
    "recovery_score": "activity",
    "heart_rate_variability_sdnn": "exam",
    "heart_rate_variability_rmssd": "exam",
    "body_fat_percentage": "exam",
    "lean_body_mass": "exam",
    "muscle_mass": "exam",
    "bone_mass": "exam",
    "body_water_percentage": "exam",
    "waist_circumference": "exam",
    "peak_expiratory_flow": "exam",
    "fev1": "exam",
    "perfusion_index": "exam",
    "skin_temperature_deviation": "exam",
    "stress_level": "survey",
    "pain_score": "survey",
    "mood_score": "survey",
    "water_intake": "social-history",
    "dietary_energy": "social-history",
    "carbohydrate_intake": "social-history",
    "protein_intake": "social-history",
}
BP_COMPONENT_DISPLAY = {"8480-6": "Systolic blood pressure", "8462-4": "Diastolic blood pressure"}


def _instant(moment: datetime, offset_minutes: int = 0) -> str:
    """ISO 8601 with an offset, in the reading's own offset so clients see its local clock time."""
    return moment.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()


def _quantity(value: float, metric_type: MetricType) -> dict[str, Any]:
    """A valueQuantity: rounded to the catalog's precision, `unit` the human label (FHIR's Quantity.unit is the
    human text), `code` the UCUM code."""
    return {
        "value": round_value(value, metric_type.precision),
        "unit": metric_type.unit_label or metric_type.unit,
        "system": UCUM,
        "code": metric_type.unit,
    }


def metric_type_code(metric_type: MetricType) -> dict[str, Any]:
    """LOINC first when the type has one, and always our own code, so every type round-trips."""
    coding = []
    if metric_type.loinc:
        coding.append({"system": LOINC, "code": metric_type.loinc, "display": metric_type.display_name})
    coding.append({"system": METRIC_TYPE_SYSTEM, "code": metric_type.code, "display": metric_type.display_name})
    return {"coding": coding, "text": metric_type.display_name}


def observation_resource(reading: Reading) -> dict[str, Any]:
    """One reading as an Observation: final, categorised, coded, in its canonical UCUM unit.

    Blood pressure is the 85354-9 panel with systolic and diastolic components and no value of its own;
    interval types (sleep) carry an effectivePeriod.
    """
    metric_type = reading.metric_type
    category = CATEGORY_BY_TYPE.get(metric_type.code, "exam")
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(reading.pk),
        "meta": {"lastUpdated": _instant(reading.updated_at)},
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": category, "display": CATEGORY_DISPLAY[category]}]}
        ],
        "code": metric_type_code(metric_type),
        "subject": {"reference": f"Patient/{reading.user_id}"},
    }
    if metric_type.is_interval and reading.ended_at is not None:
        resource["effectivePeriod"] = {
            "start": _instant(reading.recorded_at, reading.utc_offset_minutes),
            "end": _instant(reading.ended_at, reading.utc_offset_minutes),
        }
    else:
        resource["effectiveDateTime"] = _instant(reading.recorded_at, reading.utc_offset_minutes)
    resource["issued"] = _instant(reading.created_at)
    if metric_type.is_pair:
        resource["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": loinc, "display": BP_COMPONENT_DISPLAY.get(loinc, "")}]},
                "valueQuantity": _quantity(value, metric_type),
            }
            for loinc, value in (
                (metric_type.primary_loinc, reading.value),
                (metric_type.secondary_loinc, reading.secondary_value),
            )
            if value is not None
        ]
    else:
        resource["valueQuantity"] = _quantity(reading.value, metric_type)
    if reading.is_abnormal:
        resource["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": "A", "display": "Abnormal"}]}]
    if reading.notes:
        resource["note"] = [{"text": reading.notes}]
    return resource


def patient_resource(user: User) -> dict[str, Any]:
    """A user as a Patient: id, name, and gender and birth date from the profile when filled in."""
    resource: dict[str, Any] = {"resourceType": "Patient", "id": str(user.pk), "active": user.is_active}
    if user.first_name or user.last_name:
        name: dict[str, Any] = {"use": "official", "text": user.get_full_name()}
        if user.last_name:
            name["family"] = user.last_name
        if user.first_name:
            name["given"] = [user.first_name]
        resource["name"] = [name]
    profile = getattr(user, "profile", None)
    if profile is not None:
        if profile.sex:
            resource["gender"] = profile.sex  # Sex mirrors FHIR administrative gender one to one
        if profile.date_of_birth:
            resource["birthDate"] = profile.date_of_birth.isoformat()
    return resource


# --- Appointments, schedules and slots ------------------------------------------------------------------

# Our status -> FHIR R4 AppointmentStatus. `requested` is `pending`: the patient has asked (accepted) and the
# provider has not yet answered (FHIR's `proposed` is for a visit nobody has accepted yet). A `rescheduled`
# booking is `cancelled` with the reason "rescheduled" (its replacement is a booking of its own).
APPOINTMENT_STATUS = {
    AppointmentStatus.REQUESTED: "pending",
    AppointmentStatus.CONFIRMED: "booked",
    AppointmentStatus.CHECKED_IN: "checked-in",
    AppointmentStatus.COMPLETED: "fulfilled",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.NO_SHOW: "noshow",
    AppointmentStatus.RESCHEDULED: "cancelled",
}
CANCELATION_REASON_SYSTEM = "https://openvitals.org/fhir/CodeSystem/appointment-cancelation-reason"


def appointment_type_concept(appointment_type: AppointmentType) -> dict[str, Any]:
    """An appointment type as a serviceType: our own code (the type's id) and its name."""
    return {
        "coding": [
            {"system": APPOINTMENT_TYPE_SYSTEM, "code": str(appointment_type.pk), "display": appointment_type.name}
        ],
        "text": appointment_type.name,
    }


def _visit_mode(telemedicine: bool) -> dict[str, Any]:
    code, display = ("virtual", "Video visit") if telemedicine else ("in-person", "In-person visit")
    return {"coding": [{"system": VISIT_MODE_SYSTEM, "code": code, "display": display}], "text": display}


def _practitioner(user: User) -> dict[str, Any]:
    return {"reference": f"Practitioner/{user.pk}", "display": user.get_full_name() or str(user.pk)}


def practitioner_resource(provider: Provider) -> dict[str, Any]:
    """A provider as a Practitioner: the directory's public facts (name, specialty, languages), what an
    Appointment's or a Schedule's `Practitioner/{id}` reference resolves to."""
    user = provider.user
    resource: dict[str, Any] = {"resourceType": "Practitioner", "id": str(user.pk), "active": user.is_active}
    if user.first_name or user.last_name:
        name: dict[str, Any] = {"use": "official", "text": user.get_full_name(), "prefix": ["Dr"]}
        if user.last_name:
            name["family"] = user.last_name
        if user.first_name:
            name["given"] = [user.first_name]
        resource["name"] = [name]
    profile = getattr(user, "clinician_profile", None)
    if profile is not None and profile.specialty:
        resource["qualification"] = [{"code": {"text": profile.specialty}}]
    if provider.languages:
        resource["communication"] = [
            {"coding": [{"system": "urn:ietf:bcp:47", "code": code}], "text": code} for code in provider.languages
        ]
    return resource


def appointment_resource(appointment: Appointment, *, patient_reference: str | None = None) -> dict[str, Any]:
    """One booking as an Appointment: status, start/end, type, the patient and the provider as participants.

    The reason the patient gave is in `reasonCode` (text only): it is the patient's data, shown only to whoever
    may see the appointment. Clinical fields (notes, diagnosis, plan) and the video link never appear here.
    """
    kind = appointment.appointment_type
    status = APPOINTMENT_STATUS[appointment.status]
    patient = appointment.patient
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(appointment.pk),
        "meta": {"lastUpdated": _instant(appointment.updated_at)},
        "status": status,
    }
    if appointment.status == AppointmentStatus.RESCHEDULED:
        resource["cancelationReason"] = {
            "coding": [{"system": CANCELATION_REASON_SYSTEM, "code": "rescheduled", "display": "Rescheduled"}],
            "text": "Rescheduled",
        }
    resource |= {
        "serviceType": [appointment_type_concept(kind)],
        "appointmentType": _visit_mode(appointment.telemedicine),
        "description": kind.name,
        "start": _instant(appointment.starts_at),
        "end": _instant(appointment.ends_at),
        "minutesDuration": int((appointment.ends_at - appointment.starts_at).total_seconds() // 60),
        "created": _instant(appointment.created_at),
    }
    if appointment.reason:
        resource["reasonCode"] = [{"text": appointment.reason}]
    resource["participant"] = [
        {
            "actor": {
                "reference": patient_reference or f"Patient/{patient.pk}",
                "display": patient.get_full_name() or str(patient.pk),
            },
            "required": "required",
            "status": "accepted",
        },
        {
            "actor": _practitioner(appointment.provider),
            "required": "required",
            # A request waits for the provider's answer.
            "status": "needs-action" if appointment.status == AppointmentStatus.REQUESTED else "accepted",
        },
    ]
    return resource


def schedule_resource(provider: Provider, *, types: Iterable[AppointmentType], now: datetime) -> dict[str, Any]:
    """A provider's one Schedule (its id is the provider's): the types offered, bookable from now to the horizon."""
    resource: dict[str, Any] = {
        "resourceType": "Schedule",
        "id": str(provider.pk),
        "active": provider.accepting and provider.user.is_active,
    }
    service_types = [appointment_type_concept(kind) for kind in types]
    if service_types:
        resource["serviceType"] = service_types
    resource["actor"] = [_practitioner(provider.user)]
    resource["planningHorizon"] = {
        "start": _instant(now + timedelta(minutes=provider.minimum_notice_minutes)),
        "end": _instant(now + timedelta(days=provider.horizon_days)),
    }
    resource["comment"] = f"Times in {provider.timezone}; slots every {provider.slot_interval_minutes} minutes."
    return resource


def slot_id(appointment_type: AppointmentType, start: datetime) -> str:
    """A free slot's id: its type and start (FHIR ids are at most 64 of [A-Za-z0-9-.])."""
    return f"{appointment_type.pk}.{int(start.timestamp())}"


def slot_resource(
    *, provider: Provider, appointment_type: AppointmentType, start: datetime, zone: Any
) -> dict[str, Any]:
    """One free slot of an appointment type, in the provider's local clock time."""
    offset_minutes = int(start.astimezone(zone).utcoffset().total_seconds() // 60)
    end = start + timedelta(minutes=appointment_type.duration_minutes)
    return {
        "resourceType": "Slot",
        "id": slot_id(appointment_type, start),
        "serviceType": [appointment_type_concept(appointment_type)],
        "appointmentType": _visit_mode(appointment_type.telemedicine),
        "schedule": {"reference": f"Schedule/{provider.pk}"},
        "status": "free",
        "start": _instant(start, offset_minutes),
        "end": _instant(end, offset_minutes),
    }


# --- Medication plans -----------------------------------------------------------------------------------

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
# Our own extensions. A plan scheduled by an RFC 5545 RRULE carries the rule on its Timing: R4's Timing.repeat
# cannot say "every other Tuesday" or "the first of the month", and a partial translation would tell a client a
# different schedule. The rule also stands in Timing.code.text for readers that ignore extensions.
RRULE_EXTENSION = "https://openvitals.org/fhir/StructureDefinition/timing-rrule"
# When the patient last took a dose of the plan (a MedicationStatement's own extension; R4 has no element).
LAST_TAKEN_EXTENSION = "https://openvitals.org/fhir/StructureDefinition/last-dose-taken"

# Our plan status -> R4 MedicationRequest.status and MedicationStatement.status (the same four codes exist in both).
PLAN_STATUS = {
    PlanStatus.ACTIVE: "active",
    PlanStatus.PAUSED: "on-hold",
    PlanStatus.COMPLETED: "completed",
    PlanStatus.DISCONTINUED: "stopped",
}
# SNOMED CT route of administration (R4's example binding, http://hl7.org/fhir/ValueSet/route-codes), International
# edition; "other" is text only.
ROUTE_CODES = {
    Route.ORAL: ("26643006", "Oral route"),
    Route.SUBLINGUAL: ("37839007", "Sublingual route"),
    Route.INHALED: ("447694001", "Respiratory tract route"),
    Route.NASAL: ("46713006", "Nasal route"),
    Route.TOPICAL: ("6064005", "Topical route"),
    Route.TRANSDERMAL: ("45890007", "Transdermal route"),
    Route.OPHTHALMIC: ("54485002", "Ophthalmic route"),
    Route.OTIC: ("10547007", "Otic route"),
    Route.SUBCUTANEOUS: ("34206005", "Subcutaneous route"),
    Route.INTRAMUSCULAR: ("78421000", "Intramuscular route"),
    Route.INTRAVENOUS: ("47625008", "Intravenous route"),
    Route.RECTAL: ("37161004", "Rectal route"),
    Route.VAGINAL: ("16857009", "Vaginal route"),
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # FHIR's days-of-week codes; ours count from Monday = 0
# Dose units that are UCUM units get the code as well; counted forms (tablet, puff, drop) stay text.
UCUM_DOSE_UNITS = {"mg": "mg", "g": "g", "mcg": "ug", "ug": "ug", "µg": "ug", "ml": "mL", "l": "L", "iu": "[IU]"}
# A file's MedicationStatement needs a fullUrl of its own (its id is the plan's, as the MedicationRequest's is).
_STATEMENT_NAMESPACE = uuid.UUID("6f1c1c2e-7d0b-4f0e-9a53-4b1f3c7e2a10")


def plans_for_fhir(plans: QuerySet[MedicationPlan]) -> QuerySet[MedicationPlan]:
    """What the mappers read, in the plans' own query: the catalog product, the prescriber, and the last dose taken
    (`last_taken`, for the MedicationStatement). Lazy: it builds the query, the caller runs it."""
    last_taken = (
        Dose.objects.filter(plan=OuterRef("pk"), status=DoseStatus.TAKEN).order_by("-taken_at").values("taken_at")[:1]
    )
    return plans.select_related("medication", "prescriber").annotate(last_taken=Subquery(last_taken))


def statement_uuid(plan: MedicationPlan) -> uuid.UUID:
    return uuid.uuid5(_STATEMENT_NAMESPACE, str(plan.pk))


def _number(value: Decimal | int) -> int | float:
    """A JSON number (DjangoJSONEncoder would write a Decimal as a string): 1 for 1.000, 2.5 for 2.500."""
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def _amount(value: Decimal, unit: str) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": _number(value), "unit": unit}
    code = UCUM_DOSE_UNITS.get(unit.strip().lower())
    if code is not None:
        quantity |= {"system": UCUM, "code": code}
    return quantity


def _date_or_instant(value: date | datetime) -> str:
    return _instant(value) if isinstance(value, datetime) else value.isoformat()


def medication_concept(plan: MedicationPlan) -> dict[str, Any]:
    """What is taken: the RxNorm code when the catalog product has one, and always the plan's name as text."""
    medication = plan.medication
    concept: dict[str, Any] = {}
    if medication is not None and medication.rxcui:
        concept["coding"] = [{"system": RXNORM, "code": medication.rxcui, "display": medication.name}]
    concept["text"] = plan.name or (medication.name if medication is not None else "") or "Medication"
    return concept


def _route(route: str) -> dict[str, Any]:
    label = Route(route).label
    if route not in ROUTE_CODES:
        return {"text": label}
    code, display = ROUTE_CODES[route]
    return {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": label}


def _times_of_day(times: list[str]) -> list[str]:
    """Our "08:00" as FHIR's time "08:00:00"."""
    return [time if time.count(":") == 2 else f"{time}:00" for time in times]


def _timing(plan: MedicationPlan) -> dict[str, Any] | None:
    """The schedule: an RRULE (see RRULE_EXTENSION), every N hours, or times of day on every day or some weekdays;
    None for an as-needed plan without one."""
    if plan.rrule:
        return {"extension": [{"url": RRULE_EXTENSION, "valueString": plan.rrule}], "code": {"text": plan.rrule}}
    if plan.interval_hours:
        return {"repeat": {"frequency": 1, "period": plan.interval_hours, "periodUnit": "h"}}
    if plan.times:
        repeat: dict[str, Any] = {"frequency": len(plan.times), "period": 1, "periodUnit": "d"}
        if plan.days_of_week:
            repeat["dayOfWeek"] = [WEEKDAYS[day] for day in sorted(plan.days_of_week)]
        repeat["timeOfDay"] = _times_of_day(plan.times)
        return {"repeat": repeat}
    return None


def _sig(plan: MedicationPlan) -> str:
    """The dosage as one line of text: "1 tablet, oral, at 08:00 and 20:00 on Mon, Thu"."""
    parts = [f"{_number(plan.dose)} {plan.dose_unit}", Route(plan.route).label.lower()]
    if plan.rrule:
        parts.append(f"on the schedule {plan.rrule}")
    elif plan.interval_hours:
        parts.append(f"every {plan.interval_hours} hours")
    elif plan.times:
        when = f"at {' and '.join(plan.times)}"
        if plan.days_of_week:
            when += " on " + ", ".join(WEEKDAYS[day].title() for day in sorted(plan.days_of_week))
        parts.append(when)
    if plan.as_needed:
        parts.append("as needed")
        if plan.max_doses_per_day:
            parts.append(f"at most {plan.max_doses_per_day} doses a day")
    return ", ".join(parts)


def dosage(plan: MedicationPlan) -> dict[str, Any]:
    """The plan's Dosage: text, the patient's instructions, timing, as-needed with its daily maximum (as an amount:
    doses a day times the dose), route and dose."""
    result: dict[str, Any] = {"text": _sig(plan)}
    if plan.instructions:
        result["patientInstruction"] = plan.instructions
    timing = _timing(plan)
    if timing is not None:
        result["timing"] = timing
    result["asNeededBoolean"] = plan.as_needed
    result["route"] = _route(plan.route)
    result["doseAndRate"] = [{"doseQuantity": _amount(plan.dose, plan.dose_unit)}]
    if plan.as_needed and plan.max_doses_per_day:
        result["maxDosePerPeriod"] = {
            "numerator": _amount(plan.dose * plan.max_doses_per_day, plan.dose_unit),
            "denominator": {"value": 1, "unit": "day", "system": UCUM, "code": "d"},
        }
    return result


def _requester(plan: MedicationPlan) -> dict[str, Any] | None:
    """A clinician prescriber is `Practitioner/<id>`; a prescriber known by name only is a display-only reference."""
    prescriber = plan.prescriber
    if prescriber is not None and prescriber.is_clinician:
        return {
            "reference": f"Practitioner/{prescriber.pk}",
            "display": prescriber.get_full_name() or plan.prescriber_name or str(prescriber.pk),
        }
    if plan.prescriber_name:
        return {"display": plan.prescriber_name}
    return None


def medication_request(plan: MedicationPlan, *, patient_reference: str | None = None) -> dict[str, Any]:
    """A plan as a MedicationRequest: an `order` when a prescriber is named, else the patient's own `plan`; the
    plan's dates are the dispense request's validity."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": str(plan.pk),
        "meta": {"lastUpdated": _instant(plan.updated_at)},
        "status": PLAN_STATUS[plan.status],
        "intent": "order" if plan.prescriber_id or plan.prescriber_name else "plan",
        "medicationCodeableConcept": medication_concept(plan),
        "subject": {"reference": patient_reference or f"Patient/{plan.patient_id}"},
        "authoredOn": _instant(plan.created_at),
    }
    requester = _requester(plan)
    if requester is not None:
        resource["requester"] = requester
    resource["dosageInstruction"] = [dosage(plan)]
    validity = {"start": plan.start_date.isoformat()}
    if plan.end_date is not None:
        validity["end"] = plan.end_date.isoformat()
    resource["dispenseRequest"] = {"validityPeriod": validity}
    return resource


def medication_statement(
    plan: MedicationPlan,
    *,
    last_taken: datetime | None = None,
    patient_reference: str | None = None,
    request_reference: str | None = None,
) -> dict[str, Any]:
    """A plan as a MedicationStatement: what the patient is (or was) taking, based on the MedicationRequest of the
    same id. The period ends at the end date, or for a stopped or completed plan without one when its status
    changed; `last_taken` (the last dose taken) is carried in LAST_TAKEN_EXTENSION."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": str(plan.pk),
        "meta": {"lastUpdated": _instant(plan.updated_at)},
    }
    if last_taken is not None:
        resource["extension"] = [{"url": LAST_TAKEN_EXTENSION, "valueDateTime": _instant(last_taken)}]
    resource |= {
        "basedOn": [{"reference": request_reference or f"MedicationRequest/{plan.pk}"}],
        "status": PLAN_STATUS[plan.status],
        "medicationCodeableConcept": medication_concept(plan),
        "subject": {"reference": patient_reference or f"Patient/{plan.patient_id}"},
    }
    period = {"start": plan.start_date.isoformat()}
    end: date | datetime | None = plan.end_date
    if end is None and plan.status in (PlanStatus.COMPLETED, PlanStatus.DISCONTINUED):
        end = plan.status_changed_at
    if isinstance(end, datetime) and end.astimezone(UTC).date() < plan.start_date:
        end = plan.start_date  # stopped before it began
    if end is not None:
        period["end"] = _date_or_instant(end)
    resource |= {"effectivePeriod": period, "dateAsserted": _instant(plan.updated_at), "dosage": [dosage(plan)]}
    return resource


# --- Bundles --------------------------------------------------------------------------------------------


def searchset(
    *, entries: Iterable[tuple[str, dict[str, Any]]], total: int, base_url: str, links: dict[str, str]
) -> dict[str, Any]:
    """A search result page of (relative URL, resource) entries; `links` maps relation to URL."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": [{"relation": relation, "url": url} for relation, url in links.items()],
        "entry": [
            {"fullUrl": f"{base_url}/{url}", "resource": resource, "search": {"mode": "match"}}
            for url, resource in entries
        ],
    }


def searchset_bundle(
    *, readings: Iterable[Reading], total: int, base_url: str, links: dict[str, str]
) -> dict[str, Any]:
    """A search result page: `links` maps relation (self, next, previous) to URL; `base_url` ends in /r4."""
    return searchset(
        entries=((f"Observation/{reading.pk}", observation_resource(reading)) for reading in readings),
        total=total,
        base_url=base_url,
        links=links,
    )


def bundle_for_export(
    *,
    patient: User,
    readings: Iterable[Reading],
    appointments: Iterable[Appointment] = (),
    plans: Iterable[MedicationPlan] = (),
) -> dict[str, Any]:
    """A `collection` Bundle of the Patient, one Observation per reading, one Appointment per booking, and a
    MedicationRequest and a MedicationStatement per medication plan (loaded by `plans_for_fhir`), for a file
    that leaves the server.

    A file has no server base to resolve `Patient/<id>` against, so entries are named by `urn:uuid:` (our ids
    are UUIDs) and the resources point at the Patient entry that way (providers and prescribers stay
    `Practitioner/<id>`: a reference to this server's practitioner, not in the file). A plan's two resources
    share its id, so the MedicationStatement's fullUrl is a UUID derived from it, and its `basedOn` names the
    MedicationRequest's entry.
    """
    patient_url = f"urn:uuid:{patient.pk}"
    entries = [{"fullUrl": patient_url, "resource": patient_resource(patient)}]
    for reading in readings:
        observation = observation_resource(reading)
        observation["subject"] = {"reference": patient_url}
        entries.append({"fullUrl": f"urn:uuid:{reading.pk}", "resource": observation})
    for appointment in appointments:
        entries.append(
            {
                "fullUrl": f"urn:uuid:{appointment.pk}",
                "resource": appointment_resource(appointment, patient_reference=patient_url),
            }
        )
    for plan in plans:
        request_url = f"urn:uuid:{plan.pk}"
        entries.append({"fullUrl": request_url, "resource": medication_request(plan, patient_reference=patient_url)})
        statement = medication_statement(
            plan,
            last_taken=getattr(plan, "last_taken", None),
            patient_reference=patient_url,
            request_reference=request_url,
        )
        entries.append({"fullUrl": f"urn:uuid:{statement_uuid(plan)}", "resource": statement})
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(datetime.now(tz=UTC)),
        "entry": entries,
    }


def capability_statement(*, base_url: str, published: datetime) -> dict[str, Any]:
    """What this server answers (GET /fhir/r4/metadata): read and search of Observation, Appointment,
    MedicationRequest and MedicationStatement, read of Patient and Practitioner, search of Schedule and Slot
    (providers' public availability)."""
    medication_search = [
        {"name": "patient", "type": "reference"},
        {"name": "status", "type": "token"},
        {"name": "_count", "type": "number"},
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published.isoformat(),
        "publisher": "OpenVitals",
        "kind": "instance",
        "software": {"name": "OpenVitals"},
        "implementation": {"description": "OpenVitals FHIR R4 read API", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "OAuth-style bearer tokens: a JWT from /api/v1/auth/login/."},
                "resource": [
                    {
                        "type": "Observation",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "code", "type": "token"},
                            {"name": "date", "type": "date"},
                            {"name": "_count", "type": "number"},
                        ],
                    },
                    {"type": "Patient", "interaction": [{"code": "read"}]},
                    {"type": "Practitioner", "interaction": [{"code": "read"}]},
                    {
                        "type": "Appointment",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "practitioner", "type": "reference"},
                            {"name": "date", "type": "date"},
                            {"name": "status", "type": "token"},
                            {"name": "_count", "type": "number"},
                        ],
                    },
                    {
                        "type": "MedicationRequest",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": medication_search,
                    },
                    {
                        "type": "MedicationStatement",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": medication_search,
                    },
                    {
                        "type": "Schedule",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [{"name": "actor", "type": "reference"}],
                    },
                    {
                        "type": "Slot",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {"name": "schedule", "type": "reference"},
                            {"name": "start", "type": "date"},
                            {"name": "service-type", "type": "token"},
                        ],
                    },
                ],
            }
        ],
    }
