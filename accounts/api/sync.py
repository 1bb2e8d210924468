"""`changes/?since=<cursor>` for the collections a mobile app mirrors offline (accounts/sync.py has the feed)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import AccessAction
from ..sync import CursorError, changes_since


class ChangesSerializer(serializers.Serializer):
    created = serializers.ListField(child=serializers.UUIDField(), help_text="New since the cursor: fetch them.")
    updated = serializers.ListField(child=serializers.UUIDField(), help_text="Changed since the cursor: fetch them.")
    deleted = serializers.ListField(child=serializers.UUIDField(), help_text="Gone: remove them (tombstones).")
    next = serializers.CharField(help_text="The cursor to send as `since` next time (opaque).")
    has_more = serializers.BooleanField(help_text="More changes wait: ask again with `next` at once.")


class CursorExpired(exceptions.APIException):
    status_code = 410
    default_code = "cursor_expired"


class ChangesMixin:
    """Adds `GET <collection>/changes/` to an OwnedViewSet: the ids created, updated and deleted since a cursor.

    `change_collection` names the collection as the table's change triggers do (its migration's `track`).
    A clinician reads a consented patient's feed with `?patient=` (logged, as every read of it is).
    """

    change_collection: str

    @extend_schema(
        summary="What changed since a cursor (offline sync)",
        parameters=[
            OpenApiParameter(
                "since",
                str,
                description="The `next` of the previous answer; leave out to start with every current id.",
            ),
            OpenApiParameter("patient", str, description="Clinicians: a consented patient's id."),
        ],
        responses={
            200: ChangesSerializer,
            410: OpenApiResponse(description="The cursor is older than the change history kept: start again."),
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def changes(self, request: Request) -> Response:
        """Ids created, updated and deleted since `since`, and the cursor to continue from (the README: sync)."""
        patient = self.requested_patient() or request.user
        if patient.pk != request.user.pk:
            self.log_patient_access(
                [(patient.pk, "")], action=AccessAction.READ, resource=f"{self.change_collection}-changes"
            )
        objects = self.model.objects.filter(**{self.patient_field: patient.pk})
        try:
            page = changes_since(
                user_id=patient.pk,
                collection=self.change_collection,
                objects=objects,
                since=request.query_params.get("since"),
            )
        except CursorError as exc:
            if exc.code == "cursor_expired":
                raise CursorExpired(exc.detail) from None
            raise exceptions.ValidationError({"since": [exceptions.ErrorDetail(exc.detail, code=exc.code)]}) from None
        return Response(ChangesSerializer(page).data)
