"""How higher layers show themselves on portal pages without portal importing them.

``portal`` is the lowest layer: it cannot import ``changes``, ``maintenance`` or
``dbops``. Each of those registers, in its ``AppConfig.ready()``, the navigation entries,
dashboard panels and change-page panels it contributes; the portal and changes pages
render whatever is registered, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    allowed: Callable[[Any], bool]
    order: int


@dataclass(frozen=True)
class Panel:
    """A template and the function that builds its context; ``allowed`` filters who
    sees it (the context function may also return None to show nothing)."""

    key: str
    template: str
    context: Callable[..., dict[str, Any] | None]
    order: int
    allowed: Callable[[Any], bool] = lambda user: True


_nav: dict[str, NavEntry] = {}
_dashboard: dict[str, Panel] = {}
_change: dict[str, dict[str, Panel]] = {"detail": {}, "approval": {}}
_preferences: dict[str, Panel] = {}


def register_nav(label: str, url_name: str, *, allowed: Callable[[Any], bool], order: int):
    _nav[url_name] = NavEntry(label=label, url_name=url_name, allowed=allowed, order=order)


def register_dashboard_panel(key: str, template: str, context, *, order: int, allowed=None):
    _dashboard[key] = Panel(key, template, context, order, allowed or (lambda user: True))


def register_change_panel(key: str, template: str, context, *, order: int, page="detail"):
    """A panel on the change page (``page="detail"``) or on the approval page, where an
    approver sees what will run before deciding (``page="approval"``)."""
    _change[page][key] = Panel(key, template, context, order)


def register_preferences_panel(key: str, template: str, context, *, order: int, allowed=None):
    """A section of the Preferences page (the API tokens); ``context(request)``."""
    _preferences[key] = Panel(key, template, context, order, allowed or (lambda user: True))


def nav_entries() -> list[NavEntry]:
    return sorted(_nav.values(), key=lambda e: e.order)


def _render(panels: dict[str, Panel], request: HttpRequest, *args) -> list[SafeString]:
    html = []
    for panel in sorted(panels.values(), key=lambda p: p.order):
        if not panel.allowed(request.user):
            continue
        context = panel.context(request, *args)
        if context is None:
            continue
        # Rendered here, with the request, so a panel's template may use csrf_token and
        # the viewer's time zone without the page's template knowing the panel exists.
        html.append(mark_safe(render_to_string(panel.template, context, request=request)))  # noqa: S308
    return html


def dashboard_panels(request: HttpRequest) -> list[SafeString]:
    return _render(_dashboard, request)


def preferences_panels(request: HttpRequest) -> list[SafeString]:
    return _render(_preferences, request)


def change_panels(request: HttpRequest, change, *, page: str = "detail") -> list[SafeString]:
    return _render(_change[page], request, change)


_demo_seeders: list[Callable[[], str]] = []


def register_demo_seeder(seeder: Callable[[], str]) -> None:
    """``seeder()`` adds an app's demo data after portal's and returns a line to print."""
    _demo_seeders.append(seeder)


def demo_seeders() -> list[Callable[[], str]]:
    return list(_demo_seeders)


_worker_queues: list[Callable[[], list[str]]] = []


def register_worker_queues(queues: Callable[[], list[str]]) -> None:
    """``queues()`` names Celery queues an app routes tasks to besides the default one
    (the database targets' queues); a worker for all queues consumes them too."""
    _worker_queues.append(queues)


def worker_queues(default: str = "celery") -> list[str]:
    """The default queue, then every registered queue, once each."""
    names = [default]
    for queues in _worker_queues:
        names.extend(name for name in queues() if name not in names)
    return names
