from __future__ import annotations

import django_filters
from django.contrib.auth import authenticate, user_logged_in
from django.db import transaction
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.exceptions import AuthenticationFailed, NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenRefreshView

from config.filters import FilterSet
from config.inputs import validate_datetime

from ..models import AccessAction, AccessLog, CareTeamGrant, User
from ..permissions import IsPatient
from ..services import (
    change_password,
    end_all_sessions,
    end_session,
    grant_care_team_access,
    register_user,
    request_password_reset,
    reset_password,
    revoke_care_team_grant,
    update_profile,
    verify_email,
)
from ..throttles import AuthAccountThrottle, AuthIPThrottle
from ..tokens import issue_tokens
from .base import OwnedViewSet
from .serializers import (
    AccessLogSerializer,
    AuthResultSerializer,
    CareTeamGrantCreateSerializer,
    CareTeamGrantSerializer,
    ChangePasswordSerializer,
    CurrentUserSerializer,
    DetailSerializer,
    LoginSerializer,
    LogoutSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
    RefreshResultSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokensResultSerializer,
    UserWithProfileSerializer,
    VerifyEmailSerializer,
)


def _user_with_profile(user: User) -> dict:
    return UserWithProfileSerializer(User.objects.select_related("profile").get(pk=user.pk)).data


class PublicAuthView(APIView):
    """Sign-in style endpoints: no token needed, throttled per address and per account."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthIPThrottle, AuthAccountThrottle]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'  # so refused credentials are 401, not 403


@extend_schema(tags=["auth"], request=RegisterSerializer, responses={201: AuthResultSerializer})
class RegisterView(PublicAuthView):
    """Sign up as a patient (or as a clinician with an invitation); answers the user and a token pair."""

    throttle_scope = "register"

    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        profile = dict(data.pop("profile", {}) or {})
        user = register_user(
            email=data["email"],
            password=data["password"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            profile=profile,
            emergency_contacts=profile.pop("emergency_contacts", None),
            invitation_token=data.get("invitation"),
        )
        body = {"user": _user_with_profile(user), "tokens": issue_tokens(user)}
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"], request=VerifyEmailSerializer, responses={200: UserWithProfileSerializer})
class VerifyEmailView(PublicAuthView):
    """Confirm the emailed verification token."""

    throttle_classes = [AuthIPThrottle]
    throttle_scope = "verify_email"

    def post(self, request: Request) -> Response:
        serializer = VerifyEmailSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = verify_email(token=serializer.validated_data["token"])
        return Response(_user_with_profile(user))


# Failed attempts must be stored even though the answer is an error, which would roll
# back the request's transaction; so login and refresh run outside ATOMIC_REQUESTS.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
@extend_schema(
    tags=["auth"],
    request=LoginSerializer,
    responses={200: AuthResultSerializer, 401: OpenApiResponse(description="Wrong email or password.")},
)
class LoginView(PublicAuthView):
    """Email and password for the user and a token pair; locked out after repeated failures."""

    throttle_scope = "login"

    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # The plain HttpRequest, so django-axes can mark it locked out for its middleware.
        user = authenticate(request._request, **serializer.validated_data)
        if user is None:
            raise AuthenticationFailed("The email or password is wrong.", code="invalid_credentials")
        user_logged_in.send(sender=User, request=request._request, user=user)  # last_login, axes reset
        return Response({"user": _user_with_profile(user), "tokens": issue_tokens(user)})


@method_decorator(transaction.non_atomic_requests, name="dispatch")
@extend_schema(tags=["auth"], responses={200: RefreshResultSerializer})
class RefreshView(TokenRefreshView):
    """A new access and refresh token; the one presented is spent.

    Sent again within the grace window, it answers the same pair; reusing a spent one later ends every session.
    """

    serializer_class = RefreshSerializer
    authentication_classes: list = []
    throttle_classes = [AuthIPThrottle]
    throttle_scope = "refresh"

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


@extend_schema(tags=["auth"], request=LogoutSerializer, responses={205: None})
class LogoutView(APIView):
    """`{refresh}` ends that session; an empty body ends every session of the user."""

    def post(self, request: Request) -> Response:
        serializer = LogoutSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        refresh = serializer.validated_data.get("refresh")
        if refresh:
            end_session(user=request.user, refresh=refresh)
        else:
            end_all_sessions(user=request.user)
        return Response(status=status.HTTP_205_RESET_CONTENT)


@extend_schema(tags=["auth"], responses={200: CurrentUserSerializer})
class CurrentUserView(APIView):
    def get(self, request: Request) -> Response:
        user = User.objects.select_related("profile").get(pk=request.user.pk)
        return Response(CurrentUserSerializer(user).data)


@extend_schema(tags=["auth"])
class ProfileView(generics.RetrieveUpdateAPIView):
    """The signed-in user with their profile. Role, staff flags and verification are read-only."""

    serializer_class = UserWithProfileSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self) -> User:
        return (
            User.objects.select_related("profile")
            .prefetch_related("profile__emergency_contacts")
            .get(pk=self.request.user.pk)
        )

    def perform_update(self, serializer: UserWithProfileSerializer) -> None:
        data = dict(serializer.validated_data)
        profile = dict(data.pop("profile", {}) or {})
        serializer.instance = update_profile(
            user=serializer.instance,
            user_fields=data,
            profile_fields=profile,
            emergency_contacts=profile.pop("emergency_contacts", None),
        )

    def update(self, request: Request, *args, **kwargs) -> Response:
        super().update(request, *args, **kwargs)
        return Response(self.get_serializer(self.get_object()).data)


@extend_schema(tags=["auth"], request=ChangePasswordSerializer, responses={200: TokensResultSerializer})
class ChangePasswordView(APIView):
    """Change the password; every other session ends and this one gets a fresh token pair."""

    def post(self, request: Request) -> Response:
        serializer = ChangePasswordSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        tokens = change_password(
            user=request.user,
            old_password=serializer.validated_data["old_password"],
            new_password=serializer.validated_data["new_password"],
        )
        return Response({"tokens": tokens})


@extend_schema(tags=["auth"], request=PasswordResetSerializer, responses={200: DetailSerializer})
class PasswordResetView(PublicAuthView):
    """Email a single-use reset link. The answer is the same whether or not the address is known."""

    throttle_scope = "password_reset"

    def post(self, request: Request) -> Response:
        serializer = PasswordResetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        request_password_reset(email=serializer.validated_data["email"])
        return Response({"detail": "If this address has an account, a reset link is on its way."})


@extend_schema(tags=["auth"], request=PasswordResetConfirmSerializer, responses={200: DetailSerializer})
class PasswordResetConfirmView(PublicAuthView):
    """Set a new password from the emailed uid and token; every session ends."""

    throttle_classes = [AuthIPThrottle]
    throttle_scope = "password_reset_confirm"

    def post(self, request: Request) -> Response:
        serializer = PasswordResetConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reset_password(
            uid=serializer.validated_data["uid"],
            token=serializer.validated_data["token"],
            new_password=serializer.validated_data["new_password"],
        )
        return Response({"detail": "The password has been changed. Sign in with the new one."})


@extend_schema(tags=["care-team"])
class CareTeamGrantViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, OwnedViewSet
):
    """Care-team grants: a patient's own, or the ones a clinician holds. DELETE revokes at once."""

    model = CareTeamGrant
    serializer_class = CareTeamGrantSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("patient", "clinician")

    def get_serializer_class(self):
        return CareTeamGrantCreateSerializer if self.action == "create" else CareTeamGrantSerializer

    def get_permissions(self):
        if self.action == "create":  # patients grant access to their own data
            return [*super().get_permissions(), IsPatient()]
        return super().get_permissions()

    @extend_schema(request=CareTeamGrantCreateSerializer, responses={201: CareTeamGrantSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        grant = grant_care_team_access(patient=request.user, **serializer.validated_data)
        return Response(CareTeamGrantSerializer(grant).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: CareTeamGrant) -> None:
        revoke_care_team_grant(grant=instance, revoked_by=self.request.user)


class AccessLogFilterSet(FilterSet):
    patient = django_filters.UUIDFilter(field_name="patient_id", help_text="Staff: one patient's history.")
    actor = django_filters.UUIDFilter(field_name="actor_id", help_text="Who read or changed the data.")
    action = django_filters.ChoiceFilter(choices=AccessAction.choices)
    resource = django_filters.CharFilter(help_text="The part of the record, e.g. reading, healthalert, patient.")
    since = django_filters.IsoDateTimeFilter(
        field_name="at", lookup_expr="gte", help_text="ISO 8601, inclusive.", validators=[validate_datetime]
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="at", lookup_expr="lt", help_text="ISO 8601, exclusive.", validators=[validate_datetime]
    )

    class Meta:
        model = AccessLog
        fields = ("patient", "actor", "action", "resource", "since", "until")


@extend_schema(tags=["access-log"])
class AccessLogViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The accounting of disclosures: who read or changed which part of the user's record, when and from where.

    Everyone sees the reads of their own record by other people, newest first; staff see everyone's
    and filter by patient, actor, action, resource and time. The log is append-only.
    """

    serializer_class = AccessLogSerializer
    filterset_class = AccessLogFilterSet

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AccessLog.objects.none()
        entries = AccessLog.objects.select_related("actor").order_by("-at", "-id")
        user = self.request.user
        if user.sees_all_patients:
            return entries
        patient = self.request.query_params.get("patient")
        if patient and patient != str(user.pk):
            raise NotFound("No such patient.")  # one's own history only, as for any patient's data
        return entries.filter(patient=user)
