"""Events from accounts that other apps act on (accounts imports no domain app, so they listen here).

`notifications` registers its listeners when it starts (notifications/apps.py): a care-team grant or
revocation tells the clinician. A listener runs in the caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

_listeners: dict[str, list[Callable[..., None]]] = defaultdict(list)

CARE_TEAM_GRANTED = "care_team_granted"
CARE_TEAM_REVOKED = "care_team_revoked"


def listen(event: str, listener: Callable[..., None]) -> None:
    if listener not in _listeners[event]:
        _listeners[event].append(listener)


def emit(event: str, **data: Any) -> None:
    for listener in _listeners[event]:
        listener(**data)
