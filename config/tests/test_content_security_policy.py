"""A content security policy on the admin and the docs, and docs made only of this server's own files."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from iot_devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
REFERENCES = re.compile(r"""\b(?:src|href|spec-url)=["']([^"']+)["']""", re.IGNORECASE)


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def assert_strict_policy(response) -> None:
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no inline scripts, no eval, no other host
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["connect-src"] == ["'self'"]


@pytest.fixture
def static_client(settings):
    """A client whose server serves static files from the apps, as `make run` (whitenoise) does."""
    settings.WHITENOISE_USE_FINDERS = True
    return Client()


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_load_only_files_of_this_server_under_the_policy(static_client, path):
    page = static_client.get(path)
    html = page.content.decode()

    assert page.status_code == 200
    assert_strict_policy(page)
    assert INLINE_SCRIPT.findall(html) == []
    references = REFERENCES.findall(html)
    assert references, html
    assert [ref for ref in references if not ref.startswith("/")] == []  # no CDN, no other host
    for ref in references:
        asset = static_client.get(ref)
        assert asset.status_code == 200, ref
        if ref.endswith(".js") or "script" in ref:
            body = b"".join(asset.streaming_content) if asset.streaming else asset.content
            assert b"cdn.jsdelivr.net" not in body
            assert b"fonts.googleapis.com" not in body


def test_swagger_ui_starts_from_a_script_file_pointing_at_the_schema(static_client):
    script = static_client.get("/api/docs/?script=")

    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert '"/api/schema/"' in script.content.decode()


def test_the_admin_pages_run_under_the_policy_without_inline_scripts(staff, user):
    client = Client()
    client.force_login(staff)
    device = DeviceFactory(owner=user)

    for path in (
        "/admin/",
        "/admin/iot_devices/device/",
        f"/admin/iot_devices/device/{device.pk}/change/",
        f"/admin/accounts/user/{user.pk}/change/",
        reverse("admin:records_patient_vitals", args=[user.pk]),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_strict_policy(response)
        assert INLINE_SCRIPT.findall(response.content.decode()) == [], path


def test_the_admin_login_page_has_the_policy_too(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert_strict_policy(response)
