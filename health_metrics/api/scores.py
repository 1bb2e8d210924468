"""The daily health score history (`health-score/`), with today's computed fresh on every request."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OwnedViewSet, PatientQuerySerializer
from accounts.models import Scope
from accounts.selectors import user_timezone
from config.inputs import DateField

from ..models import DailyHealthScore
from ..scoring import PARTS, compute_health_score


class HealthScorePartSerializer(serializers.Serializer):
    name = serializers.CharField(help_text=f"One of: {', '.join(PARTS)} (and any part another app registers).")
    label = serializers.CharField()
    base_weight = serializers.IntegerField(help_text="The part's weight when every part has data.")
    weight = serializers.FloatField(help_text="Its weight this day: parts without data give theirs to the others.")
    score = serializers.IntegerField(allow_null=True, min_value=0, max_value=100, help_text="Null: no data.")
    contribution = serializers.FloatField(
        allow_null=True, help_text="score × weight / 100; their sum, rounded, is the day's score."
    )
    detail = serializers.CharField(help_text="The figures behind the part's score.")


class DailyHealthScoreSerializer(serializers.ModelSerializer):
    patient = serializers.UUIDField(source="user_id", read_only=True)
    parts = HealthScorePartSerializer(many=True, read_only=True)

    class Meta:
        model = DailyHealthScore
        fields = ("patient", "local_date", "score", "parts", "computed_at")
        read_only_fields = fields


class HealthScoreQuerySerializer(PatientQuerySerializer):
    start_date = DateField(required=False, help_text="First local day (inclusive).")
    end_date = DateField(required=False, help_text="Last local day (inclusive).")

    def validate(self, data: dict) -> dict:
        if data.get("start_date") and data.get("end_date") and data["end_date"] < data["start_date"]:
            raise serializers.ValidationError({"end_date": ["Must not be before start_date."]})
        return data


@extend_schema(tags=["health-metrics"])
class DailyHealthScoreViewSet(mixins.ListModelMixin, OwnedViewSet):
    """Daily health scores with their parts, newest first. Clinicians read a consented patient's with `?patient=`."""

    model = DailyHealthScore
    patient_field = "user"
    access_scope = Scope.METRICS
    serializer_class = DailyHealthScoreSerializer

    def get_queryset(self):
        return super().get_queryset().order_by("-local_date", "user_id")

    @extend_schema(parameters=[HealthScoreQuerySerializer])
    def list(self, request: Request, *args, **kwargs) -> Response:
        """The stored history; today's score (the patient's local today) is recomputed first, so it is never stale.

        Today is computed for the patient named by `?patient=`, or else for the requesting user.
        """
        query = HealthScoreQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        subject = self.requested_patient() or request.user
        compute_health_score(user=subject, local_date=timezone.localdate(timezone=user_timezone(subject)))
        queryset = self.get_queryset()
        if "start_date" in query.validated_data:
            queryset = queryset.filter(local_date__gte=query.validated_data["start_date"])
        if "end_date" in query.validated_data:
            queryset = queryset.filter(local_date__lte=query.validated_data["end_date"])
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
