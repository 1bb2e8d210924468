"""Refresh and logout under real concurrent requests to a live server, each with its own database connection."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial

import pytest
from django.conf import settings
from django.db.models import F
from django.test import override_settings

from accounts.models import AuthSession, IssuedRefreshToken
from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Every request comes from 127.0.0.1: the per-address throttle would refuse them before any race.
    pytest.mark.usefixtures("unthrottled"),
]

THREADS = 8
ROUNDS = 5


@pytest.fixture
def unthrottled():
    with override_settings(AUTH_THROTTLE_RATES={"auth_ip": "100000/min", "auth_account": "100000/min"}):
        yield


def call(url: str, body: dict | None = None, access: str | None = None) -> tuple[int, dict]:
    """GET (no body) or POST JSON; the status and the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    if access:
        request.add_header("Authorization", f"Bearer {access}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else {}


def all_at_once(*actions):
    """Run each action in its own thread, released together by a barrier; the answers in order."""
    barrier = threading.Barrier(len(actions))

    def run(action):
        barrier.wait()
        return action()

    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        return list(pool.map(run, actions))


class Api:
    def __init__(self, base: str) -> None:
        self.base = base + "/api/v1/auth/"

    def login(self, user) -> dict:
        status, body = call(self.base + "login/", {"email": user.email, "password": PASSWORD})
        assert status == 200, body
        return body["tokens"]

    def refresh(self, refresh: str) -> tuple[int, dict]:
        return call(self.base + "token/refresh/", {"refresh": refresh})

    def me(self, access: str) -> int:
        return call(self.base + "current-user/", access=access)[0]

    def logout(self, access: str, body: dict) -> int:
        return call(self.base + "logout/", body, access=access)[0]


@pytest.fixture
def api(live_server) -> Api:
    return Api(live_server.url)


def live_refresh_tokens(user) -> int:
    return IssuedRefreshToken.objects.filter(
        session__user=user, session__ended_at__isnull=True, spent_at__isnull=True
    ).count()


def test_concurrent_refreshes_of_one_token_all_answer_the_same_pair(api):
    for _ in range(ROUNDS):
        user = UserFactory()
        tokens = api.login(user)

        answers = all_at_once(*[partial(api.refresh, tokens["refresh"])] * THREADS)

        assert [status for status, _ in answers] == [200] * THREADS, answers
        pairs = {(body["access"], body["refresh"]) for _, body in answers}
        assert len(pairs) == 1, "each concurrent refresh minted its own pair"
        ((access, refresh),) = pairs
        assert live_refresh_tokens(user) == 1  # one family, one live refresh token
        assert AuthSession.objects.filter(user=user, ended_at__isnull=True).count() == 1
        assert api.me(access) == 200
        assert api.refresh(refresh)[0] == 200  # the one live token goes on rotating


@override_settings(JWT_REFRESH_GRACE_SECONDS=0)
def test_without_a_grace_window_exactly_one_of_concurrent_refreshes_wins(api):
    for _ in range(ROUNDS):
        user = UserFactory()
        tokens = api.login(user)

        answers = all_at_once(*[partial(api.refresh, tokens["refresh"])] * THREADS)

        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] + [401] * (THREADS - 1), answers
        # The losers presented a spent token: every session of the user is over, the winner's too.
        (winner,) = [body for status, body in answers if status == 200]
        assert api.me(winner["access"]) == 401
        assert api.refresh(winner["refresh"])[0] == 401
        assert live_refresh_tokens(user) == 0


def test_a_concurrent_replay_after_the_grace_window_ends_every_session(api):
    user = UserFactory()
    phone = api.login(user)
    laptop = api.login(user)
    status, rotated = api.refresh(phone["refresh"])
    assert status == 200
    # The grace window passes (moving the spend back is the same as waiting, without the wait).
    IssuedRefreshToken.objects.filter(session__user=user, spent_at__isnull=False).update(
        spent_at=F("spent_at") - timedelta(seconds=settings.JWT_REFRESH_GRACE_SECONDS + 1)
    )

    answers = all_at_once(*[partial(api.refresh, phone["refresh"])] * THREADS)

    assert [status for status, _ in answers] == [401] * THREADS
    assert api.refresh(rotated["refresh"])[0] == 401
    assert api.refresh(laptop["refresh"])[0] == 401
    assert api.me(rotated["access"]) == 401
    assert api.me(laptop["access"]) == 401
    assert live_refresh_tokens(user) == 0
    assert api.me(api.login(user)["access"]) == 200  # signing in again works


def test_logout_racing_refreshes_leaves_nothing_of_that_session_alive(api):
    for _ in range(ROUNDS):
        user = UserFactory()
        tokens = api.login(user)
        laptop = api.login(user)

        logout = partial(api.logout, tokens["access"], {"refresh": tokens["refresh"]})
        refresh = partial(api.refresh, tokens["refresh"])

        logged_out, *answers = all_at_once(logout, *[refresh] * (THREADS - 1))

        assert logged_out == 205
        # Whichever came first, nothing of the phone's session works now: not its first pair, not a rotated one.
        assert api.me(tokens["access"]) == 401
        for status, body in answers:
            assert status in (200, 401), body
            if status == 200:
                assert api.me(body["access"]) == 401
                assert api.refresh(body["refresh"])[0] == 401
        assert live_refresh_tokens(user) == 1  # the laptop's
        assert api.me(laptop["access"]) == 200
