"""Reading OSV JSON advisories (https://ossf.github.io/osv-schema/).

``parse`` accepts one OSV object or a list of them and returns plain records, or raises
``NotOSV`` naming the first thing that is wrong, so a bad file writes nothing. Severity
comes from the record's own label (``database_specific.severity``, as GitHub writes it)
or else from a CVSS v3 vector's base score.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maintenance.security import versions

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_RECORDS = 1000
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]{1,95}$")

CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN = "CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"
SEVERITY_RANK = {CRITICAL: 4, HIGH: 3, MEDIUM: 2, LOW: 1, UNKNOWN: 0}
_LABELS = {"CRITICAL": CRITICAL, "HIGH": HIGH, "MODERATE": MEDIUM, "MEDIUM": MEDIUM, "LOW": LOW}


class NotOSV(ValueError):
    """The input is not OSV JSON; the message says what is wrong and where."""


@dataclass
class AffectedPackage:
    ecosystem: str
    name: str
    ranges: list[dict]
    versions: list[str]


@dataclass
class Record:
    osv_id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    aliases: list[str]
    summary: str
    details: str
    severity: str
    cvss_vector: str
    cvss_score: float | None
    packages: list[AffectedPackage] = field(default_factory=list)
    raw: dict = field(default_factory=dict)


def _time(value: Any, where: str, *, required: bool = False) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise NotOSV(f"{where} must be an RFC 3339 time string.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise NotOSV(f"{where} is not an RFC 3339 time: {value[:40]!r}.") from None
    if parsed.tzinfo is None:
        raise NotOSV(f"{where} has no time zone (RFC 3339 times end in Z or ±hh:mm).")
    return parsed


# --- CVSS v3 base score (FIRST CVSS v3.1 specification, section 7) ---------------------

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_U = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_C = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}


def _roundup(value: float) -> float:
    as_int = round(value * 100_000)
    if as_int % 10_000 == 0:
        return as_int / 100_000
    return (math.floor(as_int / 10_000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float:
    parts = vector.split("/")
    if not parts or not re.match(r"^CVSS:3\.[01]$", parts[0]):
        raise ValueError("not a CVSS v3 vector")
    metrics = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    try:
        scope_changed = metrics["S"] == "C"
        pr = (_PR_C if scope_changed else _PR_U)[metrics["PR"]]
        exploitability = 8.22 * _AV[metrics["AV"]] * _AC[metrics["AC"]] * pr * _UI[metrics["UI"]]
        iss = 1 - (1 - _CIA[metrics["C"]]) * (1 - _CIA[metrics["I"]]) * (1 - _CIA[metrics["A"]])
    except KeyError as exc:
        raise ValueError(f"CVSS v3 vector lacks or misspells {exc}") from None
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if scope_changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    total = impact + exploitability
    return _roundup(min(1.08 * total if scope_changed else total, 10))


def rating(score: float) -> str:
    if score >= 9.0:
        return CRITICAL
    if score >= 7.0:
        return HIGH
    if score >= 4.0:
        return MEDIUM
    if score > 0:
        return LOW
    return UNKNOWN


def _severity(obj: dict) -> tuple[str, str, float | None]:
    vector, score = "", None
    for item in obj.get("severity") or []:
        if isinstance(item, dict) and item.get("type") == "CVSS_V3":
            vector = str(item.get("score", ""))[:200]
            try:
                score = cvss3_base_score(vector)
            except ValueError:
                score = None
            break
    label = (obj.get("database_specific") or {}).get("severity")
    if isinstance(label, str) and label.upper() in _LABELS:
        return _LABELS[label.upper()], vector, score
    return (rating(score) if score is not None else UNKNOWN), vector, score


# --- records -----------------------------------------------------------------------------


def _packages(obj: dict, where: str) -> list[AffectedPackage]:
    affected = obj.get("affected", [])
    if not isinstance(affected, list):
        raise NotOSV(f"{where}: 'affected' must be a list.")
    out = []
    for i, item in enumerate(affected):
        here = f"{where}: affected[{i}]"
        package = item.get("package") if isinstance(item, dict) else None
        if not isinstance(package, dict):
            raise NotOSV(f"{here} has no 'package' object.")
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str) or not name.strip():
            raise NotOSV(f"{here}.package needs an 'ecosystem' and a 'name'.")
        ranges = item.get("ranges", [])
        listed = item.get("versions", [])
        if not isinstance(ranges, list) or not isinstance(listed, list):
            raise NotOSV(f"{here}: 'ranges' and 'versions' must be lists.")
        for j, entry in enumerate(ranges):
            events = entry.get("events") if isinstance(entry, dict) else None
            if not isinstance(events, list) or not events:
                raise NotOSV(f"{here}.ranges[{j}] needs a non-empty 'events' list.")
            if not any(isinstance(e, dict) and "introduced" in e for e in events):
                raise NotOSV(f"{here}.ranges[{j}] has no 'introduced' event.")
        # Ecosystems may carry a release suffix ("Debian:12"); the base name is matched.
        base = ecosystem.split(":", 1)[0] if ecosystem not in versions.ECOSYSTEMS else ecosystem
        out.append(
            AffectedPackage(
                ecosystem=base[:40],
                name=versions.normalise_name(base, name)[:200],
                ranges=ranges,
                versions=[str(v)[:100] for v in listed if isinstance(v, str)],
            )
        )
    return out


def _record(obj: Any, where: str) -> Record:
    if not isinstance(obj, dict):
        raise NotOSV(f"{where} is not a JSON object.")
    osv_id = obj.get("id")
    if not isinstance(osv_id, str) or not _ID.match(osv_id):
        raise NotOSV(f"{where} has no OSV 'id' (such as GHSA-xxxx-xxxx-xxxx or PYSEC-2024-1).")
    where = f"{where} ({osv_id})"
    modified = _time(obj.get("modified"), f"{where}: 'modified'", required=True)
    aliases = obj.get("aliases", [])
    if not isinstance(aliases, list):
        raise NotOSV(f"{where}: 'aliases' must be a list.")
    severity, vector, score = _severity(obj)
    return Record(
        osv_id=osv_id,
        modified=modified,
        published=_time(obj.get("published"), f"{where}: 'published'"),
        withdrawn=_time(obj.get("withdrawn"), f"{where}: 'withdrawn'"),
        aliases=[str(a)[:100] for a in aliases if isinstance(a, str)][:50],
        summary=str(obj.get("summary") or "")[:500],
        details=str(obj.get("details") or "")[:20_000],
        severity=severity,
        cvss_vector=vector,
        cvss_score=score,
        packages=_packages(obj, where),
        raw=obj,
    )


def parse(data: bytes, *, name: str = "the file") -> list[Record]:
    if len(data) > MAX_FILE_BYTES:
        raise NotOSV(f"{name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise NotOSV(f"{name} is not UTF-8 text, so it is not OSV JSON.") from None
    except json.JSONDecodeError as exc:
        raise NotOSV(f"{name} is not JSON: {exc.msg} at line {exc.lineno}.") from None
    items = document if isinstance(document, list) else [document]
    if not items:
        raise NotOSV(f"{name} holds no advisory.")
    if len(items) > MAX_RECORDS:
        raise NotOSV(f"{name} holds more than {MAX_RECORDS} advisories; split it.")
    records = [
        _record(item, f"{name}[{i}]" if len(items) > 1 else name) for i, item in enumerate(items)
    ]
    ids = [r.osv_id for r in records]
    if len(set(ids)) != len(ids):
        raise NotOSV(f"{name} lists the same advisory id twice.")
    return records
