"""Our readings, users, appointments and providers' schedules as FHIR R4 resources (plain JSON dicts), for the
FHIR read API and the exports.

Pure functions: they read the rows they are given and query nothing, so a caller that pages or streams
readings controls the queries (load readings with `select_related("metric_type")`, users with "profile",
appointments with "patient", "provider" and "appointment_type", providers with "user").

The shapes follow FHIR R4 (4.0.1). The tests validate them with fhir.resources 8.x, whose top-level package
is R5 and which ships no R4 package; its `R4B` models (4.3.0) are the closest: Observation, Patient, Bundle
and OperationOutcome are unchanged between R4 and R4B, while R5 renamed and added elements.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from accounts.models import User
from appointments.models import Appointment, AppointmentStatus, AppointmentType, Provider
from health_metrics.display import round_value
from health_metrics.models import MetricType, Reading

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
    *, patient: User, readings: Iterable[Reading], appointments: Iterable[Appointment] = ()
) -> dict[str, Any]:
    """A `collection` Bundle of the Patient, one Observation per reading and one Appointment per booking, for a
    file that leaves the server.

    A file has no server base to resolve `Patient/<id>` against, so entries are named by `urn:uuid:` (our ids
    are UUIDs) and the Observations and Appointments point at the Patient entry that way (providers stay
    `Practitioner/<id>`: a reference to this server's practitioner, not in the file).
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
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(datetime.now(tz=UTC)),
        "entry": entries,
    }


def capability_statement(*, base_url: str, published: datetime) -> dict[str, Any]:
    """What this server answers (GET /fhir/r4/metadata): read and search of Observation and Appointment, read of
    Patient, search of Schedule and Slot (providers' public availability)."""
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
