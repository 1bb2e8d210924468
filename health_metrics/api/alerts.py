"""Health alerts (list, acknowledge) and per-patient alert rule overrides."""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OwnedViewSet
from accounts.models import AccessAction, Scope, User
from accounts.selectors import visible_patients
from config.filters import FilterSet
from notifications.escalation import subject_for
from notifications.models import Escalation

from ..alerts import THRESHOLD_FIELDS, acknowledge_alert, deactivate_rule_override, save_rule_override, triage_order
from ..catalog import get_catalog
from ..display import DisplayUnitsMixin, TypeDisplay, units_for_request, units_parameter
from ..fields import MetricTypeField
from ..models import AlertDirection, AlertRule, AlertStatus, HealthAlert, Reading, RuleKind, Severity
from .filters import filter_metric_type

# --- Alerts -----------------------------------------------------------------------------------


class EscalationStepSerializer(serializers.Serializer):
    step = serializers.IntegerField(help_text="1: the consented clinicians again; 2: the organization's on-call staff.")
    at = serializers.CharField(help_text="When the step was taken (ISO 8601).")
    to = serializers.ListField(child=serializers.UUIDField(), help_text="Who was told.")


class EscalationSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="open, acknowledged, resolved or exhausted (every step taken).")
    step = serializers.IntegerField(help_text="Steps taken so far.")
    next_step_at = serializers.DateTimeField(allow_null=True, help_text="When the next step is due, if open.")
    steps = EscalationStepSerializer(many=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    closed_by = serializers.UUIDField(source="closed_by_id", allow_null=True)


class HealthAlertSerializer(serializers.ModelSerializer):
    patient = serializers.UUIDField(source="user_id", read_only=True)
    metric_type = MetricTypeField(source="metric_type_id", read_only=True)
    value = serializers.SerializerMethodField(
        help_text="The most extreme value of the episode (systolic for blood pressure), canonical unit, rounded."
    )
    unit = serializers.SerializerMethodField(help_text="The canonical UCUM unit of value.")
    unit_label = serializers.SerializerMethodField(help_text="Human label of unit.")
    display_value = serializers.SerializerMethodField(help_text="value in display_unit, rounded, as text.")
    display_unit = serializers.SerializerMethodField(help_text="The reader's unit (profile, or ?units=).")
    display_unit_label = serializers.SerializerMethodField(help_text="Human label of display_unit.")
    rule = serializers.UUIDField(source="rule_id", read_only=True)
    acknowledged_by = serializers.UUIDField(source="acknowledged_by_id", read_only=True, allow_null=True)
    readings = serializers.SerializerMethodField(help_text="Ids of the readings that raised the alert.")
    escalation = serializers.SerializerMethodField(
        help_text="A critical alert's escalation (notifications/escalation.py): open until acknowledged or resolved, "
        "each step taken with when and to whom; null for alerts that never escalate."
    )

    class Meta:
        model = HealthAlert
        fields = (
            "id",
            "patient",
            "metric_type",
            "severity",
            "direction",
            "status",
            "message",
            "value",
            "unit",
            "unit_label",
            "display_value",
            "display_unit",
            "display_unit_label",
            "started_at",
            "last_reading_at",
            "resolved_at",
            "acknowledged_at",
            "acknowledged_by",
            "rule",
            "rule_version",
            "readings",
            "escalation",
            "created_at",
        )
        read_only_fields = fields

    @extend_schema_field(EscalationSerializer(allow_null=True))
    def get_escalation(self, alert: HealthAlert) -> dict | None:
        found = getattr(alert, "escalation", None)
        return None if found is None else EscalationSerializer(found).data

    def _shown(self, alert: HealthAlert) -> TypeDisplay:
        return units_for_request(self.context.get("request")).of(get_catalog().by_id[alert.metric_type_id])

    @extend_schema_field(serializers.FloatField())
    def get_value(self, alert: HealthAlert) -> float:
        return self._shown(alert).canonical.value(alert.value)

    def get_unit(self, alert: HealthAlert) -> str:
        return self._shown(alert).canonical.unit

    def get_unit_label(self, alert: HealthAlert) -> str:
        return self._shown(alert).canonical.label

    def get_display_value(self, alert: HealthAlert) -> str:
        return self._shown(alert).shown.text(alert.value)

    def get_display_unit(self, alert: HealthAlert) -> str:
        return self._shown(alert).shown.unit

    def get_display_unit_label(self, alert: HealthAlert) -> str:
        return self._shown(alert).shown.label

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_readings(self, alert: HealthAlert) -> list:
        return [reading.pk for reading in alert.readings.all()]


class HealthAlertFilterSet(FilterSet):
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    status = django_filters.MultipleChoiceFilter(
        choices=AlertStatus.choices, help_text="Repeat for several: ?status=open&status=acknowledged."
    )
    direction = django_filters.ChoiceFilter(choices=AlertDirection.choices)
    metric_type = django_filters.CharFilter(method=filter_metric_type, help_text="Code, alias or label.")

    class Meta:
        model = HealthAlert
        fields = ("severity", "status", "direction", "metric_type")


@extend_schema_view(
    list=extend_schema(parameters=[units_parameter()]),
    retrieve=extend_schema(parameters=[units_parameter()]),
)
class HealthAlertViewSet(DisplayUnitsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    """Alerts from the anomaly checks: a patient's own, a clinician's consented patients'. Open and critical first."""

    model = HealthAlert
    patient_field = "user"
    access_scope = Scope.METRICS
    serializer_class = HealthAlertSerializer
    filterset_class = HealthAlertFilterSet

    def get_queryset(self):
        queryset = (
            super()
            .get_queryset()
            .prefetch_related(Prefetch("readings", queryset=Reading.objects.only("id").order_by("recorded_at")))
        )
        return triage_order(queryset)

    def paginate_queryset(self, queryset):  # noqa: ANN001, ANN201
        page = super().paginate_queryset(queryset)
        return _with_escalations(page) if page is not None else None

    def get_object(self) -> HealthAlert:
        return _with_escalations([super().get_object()])[0]

    @extend_schema(request=None, responses=HealthAlertSerializer, parameters=[units_parameter()])
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Record who saw the alert and when; it stays until values are back in range."""
        alert = self.get_object()
        acknowledge_alert(alert=alert, by=request.user)
        self.log_access([alert], action=AccessAction.UPDATE, per_object=True)
        return Response(self.get_serializer(_with_escalations([alert])[0]).data)


def _with_escalations(alerts: list[HealthAlert]) -> list[HealthAlert]:
    """Each alert with its escalation, if it has one (one query for the page)."""
    subjects = {subject_for("health_alert_critical", {"alert_id": str(alert.pk)}, ""): alert for alert in alerts}
    found = {e.subject: e for e in Escalation.objects.filter(subject__in=subjects)} if subjects else {}
    for subject, alert in subjects.items():
        alert.escalation = found.get(subject)
    return alerts


# --- Rule overrides ---------------------------------------------------------------------------------


class AlertRuleSerializer(serializers.ModelSerializer):
    patient = serializers.PrimaryKeyRelatedField(
        source="user",
        queryset=User.objects.none(),
        required=False,
        help_text="The patient the override is for (clinicians); a patient's own by default.",
    )
    metric_type = MetricTypeField()
    kind = serializers.ChoiceField(choices=RuleKind.choices, default=RuleKind.THRESHOLD)
    unit = serializers.SerializerMethodField()
    unit_label = serializers.SerializerMethodField(help_text="Human label of unit.")

    class Meta:
        model = AlertRule
        fields = (
            "id",
            "patient",
            "metric_type",
            "kind",
            "unit",
            "unit_label",
            *THRESHOLD_FIELDS,
            "min_readings",
            "sustain_minutes",
            "confirm_minutes",
            "persist_critical_only",
            "baseline_days",
            "z_threshold",
            "min_baseline_days",
            "baseline_direction",
            "version",
            "is_active",
            "notes",
            "created_by",
            "created_at",
            "updated_at",
        )
        read_only_fields = (
            "id",
            "unit",
            "unit_label",
            "version",
            "is_active",
            "created_by",
            "created_at",
            "updated_at",
        )
        validators: list = []  # one active override per type and kind: save_rule_override answers that 400
        extra_kwargs = {name: {"help_text": "In the type's canonical unit (see `unit`)."} for name in THRESHOLD_FIELDS}

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:
            self.fields["patient"].queryset = visible_patients(request.user, Scope.METRICS)
        if self.instance is not None:  # who and what an override is for are fixed
            for name in ("patient", "metric_type", "kind"):
                self.fields[name].read_only = True

    def get_unit(self, rule: AlertRule) -> str:
        return get_catalog().by_id[rule.metric_type_id].unit

    def get_unit_label(self, rule: AlertRule) -> str:
        metric_type = get_catalog().by_id[rule.metric_type_id]
        return metric_type.unit_label or metric_type.unit


class DefaultAlertRuleSerializer(AlertRuleSerializer):
    """A default rule: the same fields, and no patient."""

    patient = serializers.UUIDField(
        source="user_id", read_only=True, allow_null=True, help_text="Null: a default rule applies to everyone."
    )


class AlertRuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OwnedViewSet,
):
    """Per-patient overrides of the default alert rules, set by the patient or a consented clinician.

    A change that alters what the rule decides raises its version; alerts record the version that raised them.
    DELETE switches the override off (the default applies again); alerts keep pointing at it.
    """

    model = AlertRule
    patient_field = "user"
    access_scope = Scope.METRICS
    serializer_class = AlertRuleSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .filter(is_active=True)
            .select_related("metric_type")
            .order_by("metric_type_id", "kind")
        )

    def perform_create(self, serializer: AlertRuleSerializer) -> None:
        data = serializer.validated_data
        patient = data.pop("user", None)  # the field's queryset already holds only patients the user may see
        if patient is None:
            if self.request.user.is_clinician:
                raise ValidationError({"patient": ["Which patient is the override for?"]})
            patient = self.request.user
        rule = AlertRule(user=patient, created_by=self.request.user, **data)
        serializer.instance = save_rule_override(rule=rule)
        self.log_access([rule], action=AccessAction.CREATE, per_object=True)

    def perform_update(self, serializer: AlertRuleSerializer) -> None:
        rule = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(rule, name, value)
        serializer.instance = save_rule_override(rule=rule)

    def perform_destroy(self, instance: AlertRule) -> None:
        deactivate_rule_override(rule=instance)

    @extend_schema(responses=DefaultAlertRuleSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def defaults(self, request: Request) -> Response:
        """The default rules (from the catalog), which apply wherever a patient has no override.

        With `?patient=`, the defaults as they stand for that patient (404 for a patient one may not see).
        """
        self.requested_patient()
        rules = AlertRule.objects.filter(user__isnull=True, is_active=True).select_related("metric_type")
        serializer = DefaultAlertRuleSerializer(rules, many=True, context=self.get_serializer_context())
        return Response(serializer.data, status=status.HTTP_200_OK)
