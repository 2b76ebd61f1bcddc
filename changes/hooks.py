"""What higher layers want to hear from the change lifecycle.

``changes`` cannot import ``maintenance``; maintenance registers listeners here in its
``AppConfig.ready()``. Listeners run inside the deciding service's transaction, so what
they write commits or rolls back with the decision.
"""

from __future__ import annotations

from collections.abc import Callable

_on_decided: list[Callable] = []


def on_approval_decided(listener: Callable) -> Callable:
    """Register ``listener(approval, by=..., now=...)``, called after each decision."""
    _on_decided.append(listener)
    return listener


def approval_decided(approval, *, by, now) -> None:
    for listener in _on_decided:
        listener(approval, by=by, now=now)


_on_moved: list[Callable] = []


def on_change_moved(listener: Callable) -> Callable:
    """Register ``listener(change)``, called when a change's state or record moves on
    (a transition, a decision, a review, a corrective action)."""
    _on_moved.append(listener)
    return listener


def change_moved(change) -> None:
    for listener in _on_moved:
        listener(change)
