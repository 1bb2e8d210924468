import pytest

pytestmark = pytest.mark.django_db


def test_login_answers_user_and_tokens(api_client, user):
    response = api_client.post("/api/v1/auth/login/", {"email": user.email, "password": "correct-Horse-battery-9"})
    assert response.status_code == 200, response.json()
    assert set(response.json()) == {"user", "tokens"}
