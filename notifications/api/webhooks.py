"""Webhook subscriptions (`notifications/webhooks/`): staff manage every one; a clinician of an organization
manages that organization's. Nobody else has any (their list is empty, create is 403); others' are 404."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import UUID_REGEX

from ..models import WebhookSubscription, webhook_organization_id
from ..webhooks import create_subscription, rotate_secret, update_subscription
from .serializers import (
    WebhookDeliverySerializer,
    WebhookSecretSerializer,
    WebhookSubscriptionCreatedSerializer,
    WebhookSubscriptionSerializer,
    WebhookSubscriptionWriteSerializer,
)


@extend_schema(tags=["notifications"])
class WebhookSubscriptionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Partner systems' URLs that receive Standard Webhooks-signed event notices (ids and kinds, no values)."""

    serializer_class = WebhookSubscriptionSerializer
    lookup_value_regex = UUID_REGEX
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return WebhookSubscription.objects.none()
        return WebhookSubscription.objects.for_user(self.request.user)

    @extend_schema(request=WebhookSubscriptionWriteSerializer, responses={201: WebhookSubscriptionCreatedSerializer})
    def create(self, request: Request) -> Response:
        """Subscribe a URL to kinds; the answer carries the signing secret, this once.

        Staff subscriptions receive every event; a clinician's belong to their organization and receive the
        events of patients whose active grant to one of its clinicians covers the event's scope."""
        user = request.user
        organization_id = None if user.sees_all_patients else webhook_organization_id(user)
        if not user.sees_all_patients and organization_id is None:
            raise PermissionDenied(
                "Webhook subscriptions belong to staff or to a clinician's organization; your account has neither."
            )
        data = WebhookSubscriptionWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription, secret = create_subscription(owner=user, organization_id=organization_id, **data.validated_data)
        subscription.secret = secret
        return Response(WebhookSubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookSubscriptionWriteSerializer, responses={200: WebhookSubscriptionSerializer})
    def update(self, request: Request, pk: str | None = None) -> Response:
        """Replace url and kinds (and is_active, when given)."""
        return self._update(request, partial=False)

    @extend_schema(
        request=WebhookSubscriptionWriteSerializer(partial=True), responses={200: WebhookSubscriptionSerializer}
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Change url, kinds or is_active; turning a disabled subscription on again forgets its failures."""
        return self._update(request, partial=True)

    def _update(self, request: Request, *, partial: bool) -> Response:
        subscription = self.get_object()
        data = WebhookSubscriptionWriteSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        update_subscription(subscription=subscription, **data.validated_data)
        return Response(WebhookSubscriptionSerializer(subscription).data)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, url_path="deliveries", serializer_class=WebhookDeliverySerializer)
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The subscription's delivery log, newest first: status, attempts, the endpoint's answer, the body sent."""
        subscription = self.get_object()
        page = self.paginate_queryset(subscription.deliveries.order_by("-created_at", "-id"))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: WebhookSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret", pagination_class=None)
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new signing secret, answered this once; the old one keeps signing beside it for
        WEBHOOK_SECRET_ROTATION_HOURS (24 by default), so receivers can switch without losing a delivery."""
        subscription = self.get_object()
        secret = rotate_secret(subscription=subscription)
        return Response({"secret": secret, "previous_secret_valid_until": subscription.previous_valid_until})
