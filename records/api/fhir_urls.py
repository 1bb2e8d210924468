"""The FHIR R4 read API, included at /fhir/r4/ (FHIR's own path style: resource type, then id; no slash)."""

from django.urls import path

from .fhir import (
    AppointmentReadView,
    AppointmentSearchView,
    MedicationRequestReadView,
    MedicationRequestSearchView,
    MedicationStatementReadView,
    MedicationStatementSearchView,
    MetadataView,
    ObservationReadView,
    ObservationSearchView,
    PatientReadView,
    PractitionerReadView,
    ScheduleSearchView,
    SlotSearchView,
)

app_name = "fhir"
urlpatterns = [
    path("metadata", MetadataView.as_view(), name="metadata"),
    path("Observation", ObservationSearchView.as_view(), name="observation-search"),
    path("Observation/<str:pk>", ObservationReadView.as_view(), name="observation-read"),
    path("Patient/<str:pk>", PatientReadView.as_view(), name="patient-read"),
    path("Practitioner/<str:pk>", PractitionerReadView.as_view(), name="practitioner-read"),
    path("Appointment", AppointmentSearchView.as_view(), name="appointment-search"),
    path("Appointment/<str:pk>", AppointmentReadView.as_view(), name="appointment-read"),
    path("MedicationRequest", MedicationRequestSearchView.as_view(), name="medication-request-search"),
    path("MedicationRequest/<str:pk>", MedicationRequestReadView.as_view(), name="medication-request-read"),
    path("MedicationStatement", MedicationStatementSearchView.as_view(), name="medication-statement-search"),
    path("MedicationStatement/<str:pk>", MedicationStatementReadView.as_view(), name="medication-statement-read"),
    path("Schedule", ScheduleSearchView.as_view(), name="schedule-search"),
    path("Slot", SlotSearchView.as_view(), name="slot-search"),
]
