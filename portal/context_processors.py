"""The navigation bar: each entry shown only to those who may use its page."""

from __future__ import annotations

from collections.abc import Callable

from django.urls import NoReverseMatch, reverse

from portal.roles import APPROVER_ROLES, Role, has_role


def _anyone(user) -> bool:
    return True


def _approver(user) -> bool:
    return user.is_superuser or has_role(user, *APPROVER_ROLES)


def _calendar(user) -> bool:
    from maintenance.calendar_selectors import may_view_calendar

    return may_view_calendar(user)


def _dbops(user) -> bool:
    return user.is_superuser or has_role(user, Role.OPERATIONS, Role.ENGINEERING)


def _patch_compliance(user) -> bool:
    from maintenance.security.selectors import may_view

    return may_view(user)


def _reports(user) -> bool:
    return user.is_superuser or has_role(user, Role.COMPLIANCE)


def _admin(user) -> bool:
    return user.is_staff


# (label, url name, who may use it). Entries whose page a later release adds are left
# out until its URL exists, so nobody is shown a link to nothing.
NAV: list[tuple[str, str, Callable]] = [
    ("Dashboard", "portal:dashboard", _anyone),
    ("Changes", "changes:list", _anyone),
    ("Approvals", "changes:approvals", _approver),
    ("Calendar", "calendar:month", _calendar),
    ("Database ops", "dbops:targets", _dbops),
    ("Patch compliance", "maintenance:security:compliance", _patch_compliance),
    ("Reports", "portal:reports", _reports),
    ("Admin", "admin:index", _admin),
]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    for label, name, allowed in NAV:
        if not allowed(user):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        items.append(
            {
                "label": label,
                "url": url,
                "active": request.path == url or (url != "/" and request.path.startswith(url)),
            }
        )
    return {"nav_items": items, "unread_notifications": _unread(user)}


def _unread(user) -> int:
    from portal.models import Notification

    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
