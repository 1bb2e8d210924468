from rest_framework.permissions import BasePermission

from .models import Role


class IsPatient(BasePermission):
    message = "Only patients can do this."

    def has_permission(self, request, view) -> bool:  # noqa: ANN001
        return bool(request.user and request.user.is_authenticated and request.user.role == Role.PATIENT)
