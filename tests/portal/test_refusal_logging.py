"""Each refused request logs its traceback once, not twice (issue 8, item 12).

With DEBUG on, Django's own console handler on the ``django`` logger printed the
"Forbidden (Permission denied)" record, traceback included, and the root's handler
printed it again. The portal's logging sends every record through the root's handler
alone.
"""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse


def _counting_handlers(name: str) -> list[tuple[logging.Handler, logging.Filter]]:
    """Every handler a record of ``name`` reaches, each given a last filter that counts
    the records the handler's own filters let through (pytest's capture is left out)."""
    found = []
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        for handler in logger.handlers:
            if type(handler).__module__.startswith("_pytest"):
                continue
            counter = logging.Filter()
            counter.seen = []  # type: ignore[attr-defined]

            def count(record, counter=counter):
                counter.seen.append(record)
                return True

            counter.filter = count  # type: ignore[method-assign]
            handler.addFilter(counter)
            found.append((handler, counter))
        logger = logger.parent if logger.propagate else None
    return found


@pytest.fixture
def handlers():
    found = _counting_handlers("django.request")
    yield found
    for handler, counter in found:
        handler.removeFilter(counter)


def _tracebacks(found) -> int:
    return sum(
        1
        for handler, counter in found
        for record in counter.seen
        if record.exc_info
        and record.getMessage().startswith("Forbidden")
        and record.levelno >= handler.level
    )


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_a_refused_request_logs_its_traceback_once(client, requester, settings, handlers, debug):
    settings.DEBUG = debug
    client.force_login(requester)  # not an approver: the queue refuses with PermissionDenied

    response = client.get(reverse("changes:approvals"))

    assert response.status_code == 403
    assert _tracebacks(handlers) == 1
