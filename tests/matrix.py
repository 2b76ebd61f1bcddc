"""What every permission matrix shares: the roles each row names, in column order, and
the answer an anonymous visitor gets from a page (a redirect to the login page).

``outsider`` holds every creator and approver role but sees only the other tenant."""

from __future__ import annotations

ROLES = (
    "requester",
    "engineer",
    "operator",
    "security",
    "compliance",
    "cto",
    "ciso",
    "outsider",
    "anonymous",
)
LOGIN = "login"  # anonymous: 302 to the login page
