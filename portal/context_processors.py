"""The navigation bar: the registered entries each user may use (see portal.registry)."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from portal import registry


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    # Every panel a page renders with the request runs the context processors again:
    # the entries and the unread count are worked out once per request.
    cached = getattr(request, "_portal_navigation", None)
    if cached is None:
        cached = request._portal_navigation = _navigation(request, user)
    return cached


def _navigation(request, user) -> dict:
    items = []
    for entry in registry.nav_entries():
        if not entry.allowed(user):
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:
            continue
        items.append(
            {
                "label": entry.label,
                "url": url,
                "active": request.path == url or (url != "/" and request.path.startswith(url)),
            }
        )
    return {"nav_items": items, "unread_notifications": _unread(user)}


def _unread(user) -> int:
    from portal.models import Notification

    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
