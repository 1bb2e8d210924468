"""APNs with token-based auth: one HTTP/2 POST per device to `{APNS_ENDPOINT}/3/device/{token}`.

The provider token is a JWT (ES256; `kid` the key id, `iss` the team id, `iat`) signed with the team's .p8 key.
APNs refuses one older than an hour and throttles a provider that makes a new one more often than every 20
minutes, so one is kept per process and made anew after PROVIDER_TOKEN_LIFETIME; a 403 ExpiredProviderToken
makes it anew once. What a lock screen shows is the kind's neutral text, never a health value.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
import jwt
from django.conf import settings

PROVIDER_TOKEN_LIFETIME = 50 * 60  # seconds: under APNs' hour, over its 20-minute refresh throttle
EXPIRATION = timedelta(days=1)  # APNs keeps a push for an offline phone this long
DEAD_TOKEN_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"}


def configured() -> bool:
    return all((settings.APNS_KEY_ID, settings.APNS_TEAM_ID, settings.APNS_AUTH_KEY, settings.APNS_TOPIC))


class ProviderTokens:
    """The provider JWT of this process, made anew after PROVIDER_TOKEN_LIFETIME or when APNs calls it expired.

    Keyed by key id, team id and key, so a changed setting (a rotated key) makes a new one at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[tuple[str, str, str], float, str] | None = None

    def get(self, *, now: float | None = None, refused: str | None = None) -> str:
        """The token to sign with; `refused`: the one APNs just called expired, made anew unless another thread
        already did (so a burst of refusals makes one new token, not one each)."""
        now = time.time() if now is None else now
        identity = (settings.APNS_KEY_ID, settings.APNS_TEAM_ID, settings.APNS_AUTH_KEY)
        with self._lock:
            cached = self._cached
            if (
                cached is not None
                and cached[0] == identity
                and 0 <= now - cached[1] < PROVIDER_TOKEN_LIFETIME
                and cached[2] != refused
            ):
                return cached[2]
            token = jwt.encode(
                {"iss": settings.APNS_TEAM_ID, "iat": int(now)},
                settings.APNS_AUTH_KEY.replace("\\n", "\n"),
                algorithm="ES256",
                headers={"kid": settings.APNS_KEY_ID},
            )
            self._cached = (identity, now, token)
            return token

    def forget(self) -> None:
        with self._lock:
            self._cached = None


PROVIDER_TOKENS = ProviderTokens()
_client: httpx.Client | None = None
_client_lock = threading.Lock()


def client() -> httpx.Client:
    """One HTTP/2 connection pool per process (APNs wants connections kept open, not one per push)."""
    global _client  # noqa: PLW0603
    with _client_lock:
        if _client is None:
            _client = httpx.Client(http2=True, timeout=httpx.Timeout(10.0))
        return _client


@dataclass
class Answer:
    """How APNs took one push: `ok`, `dead` (delete the token), `retry` (with why), or `refused` (give up)."""

    outcome: str
    detail: str = ""


def send(*, token: str, payload: dict, collapse_id: str, critical: bool, now: float | None = None) -> Answer:
    now = time.time() if now is None else now
    url = f"{settings.APNS_ENDPOINT.rstrip('/')}/3/device/{token}"
    headers = {
        "apns-topic": settings.APNS_TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "10" if critical else "5",
        "apns-expiration": str(int(now + EXPIRATION.total_seconds())),
        "apns-collapse-id": collapse_id[:64],
    }
    refused: str | None = None
    while True:
        provider_token = PROVIDER_TOKENS.get(now=now, refused=refused)
        headers["authorization"] = f"bearer {provider_token}"
        try:
            response = client().post(url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            return Answer("retry", f"{type(exc).__name__}: {exc}")
        if response.status_code == 200:
            return Answer("ok")
        reason = _reason(response)
        if response.status_code == 403 and reason == "ExpiredProviderToken":
            if refused is None:  # once: a second refusal is not cured by a third token
                refused = provider_token
                continue
            return Answer("retry", "APNs 403: ExpiredProviderToken after a new token (is the clock right?)")
        if response.status_code == 410 or (response.status_code == 400 and reason in DEAD_TOKEN_REASONS):
            return Answer("dead", reason)
        if response.status_code == 429 or response.status_code >= 500:
            return Answer("retry", f"APNs {response.status_code}: {reason}")
        return Answer("refused", f"apns_{response.status_code}_{reason}")


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("reason", "")) if isinstance(body, dict) else ""
