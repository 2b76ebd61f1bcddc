"""The patch-compliance CSV, streamed row by row (never built in memory)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.utils import timezone

from maintenance.security.selectors import Filters, open_exposures

HEADER = [
    "component",
    "ecosystem",
    "package",
    "installed version",
    "advisory",
    "aliases",
    "severity",
    "days exposed",
    "exposed since (UTC)",
    "fixed in",
    "summary",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet must not run advisory text as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def compliance_rows(user, filters: Filters) -> Iterator[str]:
    writer = csv.writer(_Echo())
    now = timezone.now()
    yield writer.writerow(HEADER)
    for e in open_exposures(user, filters, now=now).iterator(chunk_size=500):
        yield writer.writerow(
            [
                _cell(v)
                for v in (
                    e.executor.component.name,
                    e.ecosystem,
                    e.package,
                    e.installed_version,
                    e.advisory.osv_id,
                    " ".join(e.advisory.aliases),
                    e.severity,
                    max(0, (now - e.exposed_since).days),
                    e.exposed_since.strftime("%Y-%m-%d %H:%M"),
                    e.fixed_version,
                    e.advisory.summary,
                )
            ]
        )
