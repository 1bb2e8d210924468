"""A test-only URLconf: the real API plus two views that fail, to exercise the 500 path."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView


class ApiBoomView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("api boom")


def django_boom(request):
    raise RuntimeError("django boom")


urlpatterns = [
    path("boom/api/", ApiBoomView.as_view()),
    path("boom/django/", django_boom),
    path("", include("config.urls")),
]

handler400 = "config.api.json_bad_request"
handler403 = "config.api.json_permission_denied"
handler404 = "config.api.json_not_found"
handler500 = "config.api.json_server_error"
