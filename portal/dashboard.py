"""'My work' on the dashboard. Each app contributes its part through a selector."""

from __future__ import annotations

from typing import Any


def my_work(user) -> dict[str, Any]:
    from changes.selectors import approval_queue, my_open_changes
    from portal.selectors import notifications_for

    return {
        "my_changes": my_open_changes(user),
        "my_approvals": approval_queue(user)[:10],
        "notifications": notifications_for(user, limit=5),
    }
