"""Build a change's evidence pack: a zip of JSON and CSV sections, a summary PDF, the
change's audit events, a signed manifest of SHA-256 digests and the offline verifier."""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

from django.template.loader import render_to_string
from django.utils import timezone

from changes.models import ChangeRequest
from compliance import signing
from compliance.evidence.collect import collect
from compliance.exporters.base import write_csv

FORMAT = "change-portal-evidence/1"
VERIFIER = Path(__file__).with_name("verify_evidence.py")
# Each section as JSON (all together in evidence.json) and as its own CSV.
SECTIONS = (
    "change",
    "risk_factors",
    "approvals",
    "delegations",
    "windows",
    "runs",
    "steps",
    "figures",
    "pir",
    "corrective_actions",
)
README = """Evidence pack for {change} ({title})
Generated {generated_at} by {generated_by}.

summary.pdf            the change, its approvals, runs and review, for people
evidence.json          every section below in one file
<section>.csv          change, risk factors, approvals, delegations, windows, runs,
                       steps (with their redacted output), verification figures,
                       post-implementation review, corrective actions
events.json/.csv       the change's audit events with their hashes
manifest.json          SHA-256 of every file, the events' hashes and the chain head
manifest.sig           Ed25519 signature of manifest.json by the portal's key
verify_evidence.py     checks all of it offline:

    python3 verify_evidence.py <this zip or folder> --public-key signing-key.pem

The portal's public key is at /reports/signing-key.pem (key {key_id}).
"""


def _csv_rows(rows: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    if isinstance(rows, dict):  # the change itself: one field per line
        return write_csv(["field", "value"], [[k, v] for k, v in rows.items()])
    headers = list(rows[0]) if rows else ["(none)"]
    return write_csv(headers, [[row.get(h) for h in headers] for row in rows])


def summary_pdf(data: dict[str, Any], *, generated_at, generated_by: str) -> bytes:
    from weasyprint import HTML

    html = render_to_string(
        "compliance/evidence_summary.html",
        {
            **data,
            "change": data["change_obj"],
            "fields": data["change"],
            "generated_at": generated_at,
            "generated_by": generated_by,
            "key_id": signing.key_id(),
        },
    )
    return HTML(string=html, base_url=None).write_pdf()


def pack_files(change: ChangeRequest, *, by) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The pack's files (name -> bytes) and its manifest (not yet signed)."""
    data = collect(change)
    now = timezone.now()
    who = by.get_username() if by is not None else "system"
    files: dict[str, bytes] = {}
    files["summary.pdf"] = summary_pdf(data, generated_at=now, generated_by=who)
    bundle = {name: data[name] for name in SECTIONS}
    files["evidence.json"] = json.dumps(bundle, indent=2, ensure_ascii=False, default=str).encode()
    for name in SECTIONS:
        files[f"{name}.csv"] = _csv_rows(data[name])
    files["events.json"] = json.dumps(data["events"], indent=2, ensure_ascii=False).encode()
    files["events.csv"] = write_csv(
        list(data["events"][0]) if data["events"] else ["(none)"],
        [
            [json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in e.values()]
            for e in data["events"]
        ],
        redacting=False,
    )
    files["verify_evidence.py"] = VERIFIER.read_bytes()
    files["signing-key.pem"] = signing.public_key_pem().encode("ascii")
    files["README.txt"] = README.format(
        change=change.public_id,
        title=change.title,
        generated_at=now.isoformat(timespec="seconds"),
        generated_by=who,
        key_id=signing.key_id(),
    ).encode()
    manifest = {
        "format": FORMAT,
        "change": change.public_id,
        "title": change.title,
        "generated_at": now.isoformat(timespec="microseconds"),
        "generated_by": who,
        "chain_head": data["chain_head"],
        "files": {
            name: {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
            for name, body in sorted(files.items())
        },
        "events": [{"sequence": e["sequence"], "hash": e["hash"]} for e in data["events"]],
        "signature": {
            "algorithm": "Ed25519",
            "public_key": _b64(signing.public_key_raw()),
            "key_id": signing.key_id(),
            "file": "manifest.sig",
        },
    }
    return files, manifest


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode("ascii")


def write_pack(change: ChangeRequest, *, by, into: IO[bytes]) -> dict[str, Any]:
    """Write the zip into ``into``; returns the manifest."""
    files, manifest = pack_files(change, by=by)
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    with zipfile.ZipFile(into, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("manifest.sig", signing.sign(manifest_bytes) + "\n")
        for name, body in files.items():
            archive.writestr(name, body)
    return manifest


def build_pack(change: ChangeRequest, *, by) -> tuple[str, IO[bytes], dict[str, Any]]:
    """A pack in a temporary file (in memory while small), rewound, and its manifest."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    manifest = write_pack(change, by=by, into=spool)
    spool.seek(0)
    return f"{change.public_id}-evidence.zip", spool, manifest
