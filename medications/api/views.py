"""The medications API: the catalog, interaction checks, plans (with findings, revisions, stock), doses, adherence.

Plans and doses are the patient's, seen and changed by the patient and by clinicians whose grant covers
`medications` (OwnedViewSet: 404 to everyone else, every read by another person in the access log).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import OwnedViewSet, PatientQuerySerializer, log_patient_access
from accounts.models import AccessAction, Scope, User
from accounts.selectors import visible_patients
from config.filters import FilterSet
from config.inputs import InputError, check_date

from .. import safety, selectors, services
from ..models import Dose, DoseStatus, Ingredient, Medication, MedicationPlan, PlanRevision, PlanStatus
from .serializers import (
    AdherenceReportSerializer,
    CatalogMedicationSerializer,
    DoseSerializer,
    InteractionAnswerSerializer,
    InteractionQuerySerializer,
    LogDoseSerializer,
    MedicationStatsSerializer,
    PlanSerializer,
    PlanWriteSerializer,
    RangeQuerySerializer,
    RefillSerializer,
    RevisionSerializer,
    SkipSerializer,
    TakeSerializer,
)

MAX_RANGE_DAYS = 366
CONFLICT = OpenApiResponse(
    description="`unacknowledged_findings`: a severe finding needs `acknowledge_findings: true`; "
    "`invalid_transition`, `discontinued`: not allowed from the plan's status."
)
DOSE_CONFLICT = OpenApiResponse(
    description="`already_taken`, `already_skipped`: the dose is logged already; `not_due`: too early; "
    "`daily_maximum`: an as-needed plan's maximum for the day is reached; `not_as_needed`, `plan_not_active`."
)


# --- Catalog and interaction checks ---------------------------------------------------------------------------


class CatalogFilterSet(FilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="Part of the name, generic or brand name.")
    drug_class = django_filters.CharFilter(field_name="drug_class_id", help_text="A class code, e.g. `nsaid`.")
    rxcui = django_filters.CharFilter(field_name="rxcui")

    class Meta:
        model = Medication
        fields = ("search", "drug_class", "rxcui")

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        for word in value.split()[:5]:
            ingredients = Ingredient.objects.filter(Q(name__icontains=word) | Q(synonyms__icontains=word))
            queryset = queryset.filter(
                Q(name__icontains=word) | Q(generic_name__icontains=word) | Q(ingredients__in=ingredients)
            )
        return queryset.distinct()


class CatalogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The medication catalog: products with generic name, form, strength, class, ingredients and RxNorm code."""

    # Reference data, not a patient's: a class-level queryset is fine here (patient data goes through OwnedViewSet).
    queryset = (
        Medication.objects.filter(active=True)
        .select_related("drug_class")
        .prefetch_related(Prefetch("ingredients", queryset=Ingredient.objects.order_by("name")))
        .order_by("name", "id")
    )
    serializer_class = CatalogMedicationSerializer
    filterset_class = CatalogFilterSet
    lookup_value_regex = r"[0-9]{1,18}"


class InteractionCheckView(APIView):
    """Known interactions between medications named by catalog id or by name, most severe first."""

    @extend_schema(request=InteractionQuerySerializer, responses=InteractionAnswerSerializer)
    def post(self, request: Request) -> Response:
        query = InteractionQuerySerializer(data=request.data)
        query.is_valid(raise_exception=True)
        given = query.validated_data.get("medications", [])
        ids = list(dict.fromkeys(item for item in given if isinstance(item, int)))
        names = [item for item in given if isinstance(item, str)] + query.validated_data.get("names", [])
        found = {m.pk: m for m in Medication.objects.filter(pk__in=ids).prefetch_related("ingredients__classes")}
        unknown = [str(pk) for pk in ids if pk not in found]
        if unknown:
            raise exceptions.ValidationError(
                {"medications": [f"Not in the catalog: {', '.join(unknown)} (see medications/catalog/)."]}
            )
        lex = safety.lexicon()
        drugs = [safety.drug_for_medication(found[pk], ref=str(pk), lex=lex) for pk in ids]
        drugs += [safety.drug_for_name(name, lex=lex) for name in names]
        findings = safety.pairwise_findings(drugs, safety.rules())
        body = {
            "drugs": [
                {"label": drug.label, "ref": drug.ref, "recognised": bool(drug.ingredient_ids or drug.class_codes)}
                for drug in drugs
            ],
            "interactions": [finding.as_dict() for finding in findings],
        }
        return Response(body)


# --- Plans -----------------------------------------------------------------------------------------------------


class PlanFilterSet(FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=PlanStatus.choices, help_text="Repeat for several: ?status=active&status=paused."
    )

    class Meta:
        model = MedicationPlan
        fields = ("status", "as_needed")


class MedicationPlanViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, OwnedViewSet
):
    """The patient's medication plans; a consented clinician with the `medications` scope reads and changes them."""

    model = MedicationPlan
    patient_field = "patient"
    access_scope = Scope.MEDICATIONS
    serializer_class = PlanSerializer
    filterset_class = PlanFilterSet
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[MedicationPlan]:
        return super().get_queryset().select_related("medication").order_by("-created_at", "id")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context.setdefault("findings", {})
        return context

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        findings = {plan_id: [f.as_dict() for f in found] for plan_id, found in safety.findings_by_plan(page).items()}
        context = {**self.get_serializer_context(), "findings": findings}
        return self.get_paginated_response(PlanSerializer(page, many=True, context=context).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._answer(self.get_object())

    def _answer(self, plan: MedicationPlan, status_code: int = status.HTTP_200_OK, findings: list | None = None):
        fresh = self.get_queryset().get(pk=plan.pk)
        if findings is None:
            findings = [f.as_dict() for f in safety.findings_by_plan([fresh]).get(str(fresh.pk), [])]
        found = findings
        context = {**self.get_serializer_context(), "findings": {str(fresh.pk): found}}
        return Response(PlanSerializer(fresh, context=context).data, status=status_code)

    def _medication(self, reference: int | str | None) -> Medication | None:
        if reference is None or isinstance(reference, str):  # a name: see _values
            return None
        medication = Medication.objects.filter(pk=reference, active=True).first()
        if medication is None:
            raise exceptions.ValidationError({"medication": ["Not in the catalog (see medications/catalog/)."]})
        return medication

    def _patient(self, patient_id: Any) -> User:
        user = self.request.user
        if patient_id is None or patient_id == user.pk:
            return user
        patient = visible_patients(user, Scope.MEDICATIONS).filter(pk=patient_id).first()
        if patient is None:
            raise exceptions.NotFound("No such patient.")
        return patient

    def _values(self, data: dict[str, Any]) -> dict[str, Any]:
        values = {key: value for key, value in data.items() if key not in ("patient", "acknowledge_findings")}
        if "medication" in values:
            reference = values["medication"]
            if isinstance(reference, str):  # a name: the catalog product of exactly that name, else free text
                values["medication"] = Medication.objects.filter(name__iexact=reference, active=True).first()
                values.setdefault("name", reference)
            else:
                values["medication"] = self._medication(reference)
        return values

    @extend_schema(request=PlanWriteSerializer, responses={201: PlanSerializer, 409: CONFLICT})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Start a plan: for yourself, or (a clinician) for a patient whose grant covers medications.

        The answer lists the safety findings; a severe one needs `acknowledge_findings: true` (409 otherwise).
        """
        data = PlanWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = self._values(data.validated_data)
        values.pop("status", None)
        patient = self._patient(data.validated_data.get("patient"))
        actor = request.user
        if actor.pk != patient.pk and actor.is_clinician:
            values["prescriber"] = actor
            values.setdefault("prescriber_name", actor.get_full_name() or actor.email)
        plan, findings = services.create_plan(
            patient=patient,
            actor=actor,
            values=values,
            acknowledge_findings=data.validated_data["acknowledge_findings"],
        )
        self.log_access([plan], action=AccessAction.CREATE, per_object=True)
        return self._answer(plan, status.HTTP_201_CREATED, [f.as_dict() for f in findings])

    @extend_schema(request=PlanWriteSerializer, responses={200: PlanSerializer, 409: CONFLICT})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change a plan (a new revision); a new schedule or status regenerates the future doses not yet logged."""
        plan = self.get_object()
        data = PlanWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        findings = services.update_plan(
            plan=plan,
            actor=request.user,
            changes=self._values(data.validated_data),
            acknowledge_findings=data.validated_data.get("acknowledge_findings", False),
        )
        return self._answer(plan, findings=[f.as_dict() for f in findings])

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Discontinue the plan: it stays in the history with its revisions and doses; its future doses go."""
        services.discontinue_plan(plan=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=LogDoseSerializer, responses={201: DoseSerializer, 409: DOSE_CONFLICT})
    @action(detail=True, methods=["post"])
    def log(self, request: Request, pk: str | None = None) -> Response:
        """Log an as-needed (PRN) dose, refused at the plan's daily maximum for the patient's local day."""
        plan = self.get_object()
        data = LogDoseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dose = services.log_as_needed_dose(
            plan=plan,
            actor=request.user,
            taken_at=data.validated_data.get("taken_at"),
            quantity=data.validated_data.get("quantity"),
            note=data.validated_data["note"],
        )
        fresh = Dose.objects.select_related("plan").get(pk=dose.pk)
        return Response(DoseSerializer(fresh).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RefillSerializer, responses={200: PlanSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def refill(self, request: Request, pk: str | None = None) -> Response:
        """Add stock (in the dose's unit); stock back above the threshold re-arms the refill reminder."""
        plan = self.get_object()
        data = RefillSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.refill(plan=plan, actor=request.user, quantity=data.validated_data["quantity"])
        return self._answer(plan)

    @extend_schema(responses=RevisionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def revisions(self, request: Request, pk: str | None = None) -> Response:
        """Every change of the plan, oldest first: who, when, what, and the findings acknowledged."""
        plan = self.get_object()
        revisions = PlanRevision.objects.filter(plan=plan).order_by("number")
        return Response(RevisionSerializer(revisions, many=True).data)


# --- Doses -----------------------------------------------------------------------------------------------------


class LocalDayField(forms.DateField):
    """A date within what the API accepts anywhere (config.inputs: 1900-01-01 to 9998-12-31)."""

    def clean(self, value: Any) -> Any:
        day = super().clean(value)
        if day is not None:
            try:
                check_date(day)
            except InputError as error:
                raise forms.ValidationError(error.message, code=error.code) from None
        return day


class LocalDayFilter(django_filters.DateFilter):
    field_class = LocalDayField


class DoseFilterSet(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DoseStatus.choices, help_text="Repeat for several.")
    start_date = LocalDayFilter(field_name="local_date", lookup_expr="gte", help_text="First local day.")
    end_date = LocalDayFilter(field_name="local_date", lookup_expr="lte", help_text="Last local day.")
    as_needed = django_filters.BooleanFilter(field_name="scheduled_at", lookup_expr="isnull", help_text="PRN only.")

    class Meta:
        model = Dose
        fields = ("plan", "status", "start_date", "end_date", "as_needed", "late")


class DoseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    """The dose schedule and its log, newest local day first; take or skip a dose (also late, once missed)."""

    model = Dose
    patient_field = "patient"
    access_scope = Scope.MEDICATIONS
    serializer_class = DoseSerializer
    filterset_class = DoseFilterSet

    def get_queryset(self) -> QuerySet[Dose]:
        return super().get_queryset().select_related("plan").order_by("-local_date", "-scheduled_at", "id")

    def _answer(self, dose: Dose) -> Response:
        return Response(DoseSerializer(self.get_queryset().get(pk=dose.pk)).data)

    @extend_schema(request=TakeSerializer, responses={200: DoseSerializer, 409: DOSE_CONFLICT})
    @action(detail=True, methods=["post"])
    def take(self, request: Request, pk: str | None = None) -> Response:
        """Log the dose as taken (now, or `taken_at`); late after the grace window or once marked missed."""
        dose = self.get_object()
        data = TakeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.take_dose(
            dose=dose,
            actor=request.user,
            taken_at=data.validated_data.get("taken_at"),
            note=data.validated_data["note"],
        )
        return self._answer(dose)

    @extend_schema(request=SkipSerializer, responses={200: DoseSerializer, 409: DOSE_CONFLICT})
    @action(detail=True, methods=["post"])
    def skip(self, request: Request, pk: str | None = None) -> Response:
        """Log the dose as skipped, with the reason."""
        dose = self.get_object()
        data = SkipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.skip_dose(
            dose=dose, actor=request.user, reason=data.validated_data["reason"], note=data.validated_data["note"]
        )
        return self._answer(dose)


# --- Adherence and stats ---------------------------------------------------------------------------------------


def _patient_of(request: Request, patient_id: Any) -> User:
    user = request.user
    if patient_id is None or patient_id == user.pk:
        return user
    patient = visible_patients(user, Scope.MEDICATIONS).filter(pk=patient_id).first()
    if patient is None:
        raise exceptions.NotFound("No such patient.")
    log_patient_access(request, [(patient.pk, "")], action=AccessAction.READ, resource="medication adherence")
    return patient


def _today(patient: User) -> Any:
    return timezone.localdate(timezone.now(), ZoneInfo(services.patient_zone(patient)))


class AdherenceView(APIView):
    """Per plan and overall over a range of local days: taken, late, missed, skipped, and PDC (≥ 0.8 adherent)."""

    @extend_schema(parameters=[RangeQuerySerializer], responses=AdherenceReportSerializer)
    def get(self, request: Request) -> Response:
        query = RangeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        patient = _patient_of(request, query.validated_data.get("patient"))
        end = query.validated_data.get("end_date") or _today(patient)
        start = query.validated_data.get("start_date") or end - timedelta(days=29)
        if end < start:
            raise exceptions.ValidationError({"end_date": ["Must not be before start_date."]})
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise exceptions.ValidationError({"end_date": [f"At most {MAX_RANGE_DAYS} days from start_date."]})
        plans = MedicationPlan.objects.filter(patient=patient)
        if "plan" in query.validated_data:
            plans = plans.filter(pk=query.validated_data["plan"])
        report = selectors.adherence_report(
            plans=plans,
            doses=Dose.objects.filter(patient=patient),
            start=start,
            end=end,
            zone=services.patient_zone(patient),
        )
        return Response(AdherenceReportSerializer(report).data)


class StatsView(APIView):
    """Active plans, those needing a refill, today's doses, and adherence over the last 7 days."""

    @extend_schema(parameters=[PatientQuerySerializer], responses=MedicationStatsSerializer)
    def get(self, request: Request) -> Response:
        query = PatientQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        patient = _patient_of(request, query.validated_data.get("patient"))
        body = selectors.stats(
            plans=MedicationPlan.objects.filter(patient=patient),
            doses=Dose.objects.filter(patient=patient),
            today=_today(patient),
            zone=services.patient_zone(patient),
        )
        return Response(MedicationStatsSerializer(body).data)
