"""'My work' on the dashboard. Each app contributes its part through a selector."""

from __future__ import annotations

from typing import Any


def my_work(user) -> dict[str, Any]:
    from portal.selectors import notifications_for

    return {
        "my_changes": [],
        "my_approvals": [],
        "notifications": notifications_for(user, limit=5),
    }
