"""Times as people read them: always with the zone they are in."""

from __future__ import annotations

import zoneinfo
from datetime import datetime


def zoned(moment: datetime, tzname: str) -> str:
    """A time with the zone it is in named, e.g. "2026-12-06 02:00 CET"."""
    try:
        zone = zoneinfo.ZoneInfo(tzname or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
