"""Evidence packs: what they hold, who may have one, and the offline verifier catching a
changed file, a removed event and a manifest signed with another key."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader

from compliance import signing
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def _download(client, change) -> bytes:
    response = client.get(f"/changes/{change.pk}/evidence.zip")
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "application/zip"
    return b"".join(response.streaming_content)


def _verify(tmp_path: Path, pack: bytes | Path, *, key: bool = True):
    """Run the pack's own verifier in a fresh Python, as an auditor would."""
    if isinstance(pack, bytes):
        path = tmp_path / "pack.zip"
        path.write_bytes(pack)
        source = zipfile.ZipFile(path).read("verify_evidence.py")
    else:
        path = pack
        source = (path / "verify_evidence.py").read_bytes()
    verifier = tmp_path / "verify_evidence.py"
    verifier.write_bytes(source)
    args = [sys.executable, str(verifier), str(path)]
    if key:
        pem = tmp_path / "signing-key.pem"
        pem.write_text(signing.public_key_pem())
        args += ["--public-key", str(pem)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _rewrite(pack: bytes, changes: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pack)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, changes.get(info.filename, src.read(info)))
    return out.getvalue()


def test_a_pack_holds_every_section_the_events_and_a_signed_manifest(
    client, compliance, ran_change
):
    client.force_login(compliance)

    pack = zipfile.ZipFile(io.BytesIO(_download(client, ran_change)))

    names = set(pack.namelist())
    for section in (
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
    ):
        assert f"{section}.csv" in names
    assert {"summary.pdf", "evidence.json", "events.json", "events.csv", "manifest.json"} <= names
    assert {"manifest.sig", "verify_evidence.py", "signing-key.pem", "README.txt"} <= names
    bundle = json.loads(pack.read("evidence.json"))
    assert bundle["change"]["id"] == ran_change.public_id
    assert [a["decided_by"] for a in bundle["approvals"]] == ["security"]
    assert [f["key"] for f in bundle["risk_factors"]] == ["priority", "tenants"]
    assert bundle["steps"][0]["output"] == "rotating\nall good\n"
    assert bundle["windows"][0]["title"] == "Sunday window"
    assert bundle["pir"][0]["notes"] == "Went to plan."
    events = json.loads(pack.read("events.json"))
    assert [e["action"] for e in events] == [
        "change.submitted",
        "approval.approved",
        "change.completed",
    ]
    stored = AuditEvent.objects.get(sequence=events[0]["sequence"])
    assert events[0]["hash"] == stored.hash
    manifest = json.loads(pack.read("manifest.json"))
    assert manifest["change"] == ran_change.public_id
    assert set(manifest["files"]) == names - {"manifest.json", "manifest.sig"}
    assert manifest["chain_head"]["sequence"] >= events[-1]["sequence"]
    assert manifest["signature"]["key_id"] == signing.key_id()
    text = "".join(
        page.extract_text() for page in PdfReader(io.BytesIO(pack.read("summary.pdf"))).pages
    )
    assert ran_change.public_id in text and "Went to plan." in text


def test_the_verifier_passes_a_fresh_pack(client, compliance, ran_change, tmp_path):
    client.force_login(compliance)

    result = _verify(tmp_path, _download(client, ran_change))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK: {ran_change.public_id}")
    assert "signature valid (the portal's key" in result.stdout


def test_the_verifier_needs_only_the_standard_library(client, compliance, ran_change, tmp_path):
    """Without site-packages (no cryptography) it still checks files and events and
    says the signature was not checked."""
    client.force_login(compliance)
    pack = tmp_path / "pack.zip"
    pack.write_bytes(_download(client, ran_change))
    verifier = tmp_path / "verify_evidence.py"
    verifier.write_bytes(zipfile.ZipFile(pack).read("verify_evidence.py"))

    result = subprocess.run(
        [sys.executable, "-I", "-S", str(verifier), str(pack)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "signature NOT checked" in result.stdout


def test_the_verifier_names_a_changed_file(client, compliance, ran_change, tmp_path):
    client.force_login(compliance)
    pack = _download(client, ran_change)
    tampered = _rewrite(pack, {"approvals.csv": b"role,status\nSECURITY,APPROVED\n"})

    result = _verify(tmp_path, tampered)

    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        "FAILED: approvals.csv: SHA-256 does not match the manifest (the file was changed)"
    )


def test_the_verifier_names_a_changed_file_in_an_extracted_folder(
    client, compliance, ran_change, tmp_path
):
    client.force_login(compliance)
    folder = tmp_path / "extracted"
    zipfile.ZipFile(io.BytesIO(_download(client, ran_change))).extractall(folder)
    (folder / "summary.pdf").write_bytes(b"%PDF-1.7 forged")

    result = _verify(tmp_path, folder)

    assert result.returncode == 1
    assert "FAILED: summary.pdf: SHA-256 does not match" in result.stdout


def test_the_verifier_names_a_removed_event(client, compliance, ran_change, tmp_path):
    client.force_login(compliance)
    pack = _download(client, ran_change)
    events = json.loads(zipfile.ZipFile(io.BytesIO(pack)).read("events.json"))
    removed = events.pop(1)

    result = _verify(tmp_path, _rewrite(pack, {"events.json": json.dumps(events).encode()}))

    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    assert first == (
        f"FAILED: event #{removed['sequence']}: listed in the manifest but missing (removed)"
    )


def test_the_verifier_names_an_altered_event(client, compliance, ran_change, tmp_path):
    client.force_login(compliance)
    pack = _download(client, ran_change)
    events = json.loads(zipfile.ZipFile(io.BytesIO(pack)).read("events.json"))
    events[1]["username"] = "someone-else"

    result = _verify(tmp_path, _rewrite(pack, {"events.json": json.dumps(events).encode()}))

    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f"FAILED: event #{events[1]['sequence']}: its content does not match its hash (altered)"
    )


def test_the_verifier_refuses_a_manifest_re_signed_with_another_key(
    client, compliance, ran_change, tmp_path
):
    client.force_login(compliance)
    pack = _download(client, ran_change)
    archive = zipfile.ZipFile(io.BytesIO(pack))
    manifest = json.loads(archive.read("manifest.json"))
    # The forger changes a file, fixes its digest, and signs with a key of their own.
    body = b"role,status\nSECURITY,APPROVED\n"
    manifest["files"]["approvals.csv"] = {
        "sha256": hashlib.sha256(body).hexdigest(),
        "bytes": len(body),
    }
    other = Ed25519PrivateKey.generate()
    raw = other.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    manifest["signature"]["public_key"] = base64.b64encode(raw).decode()
    manifest_bytes = json.dumps(manifest).encode()
    signature = base64.b64encode(other.sign(manifest_bytes)).decode()
    tampered = _rewrite(
        pack,
        {
            "manifest.json": manifest_bytes,
            "manifest.sig": signature.encode(),
            "approvals.csv": body,
        },
    )

    result = _verify(tmp_path, tampered)

    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(
        "FAILED: manifest.json: signed with another key"
    )


def test_the_verifier_refuses_an_edited_manifest(client, compliance, ran_change, tmp_path):
    client.force_login(compliance)
    pack = _download(client, ran_change)
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(pack)).read("manifest.json"))
    manifest["title"] = "Something harmless"

    result = _verify(tmp_path, _rewrite(pack, {"manifest.json": json.dumps(manifest).encode()}))

    assert result.returncode == 1
    assert "FAILED: manifest.json: the signature does not match" in result.stdout


def test_a_pack_is_hidden_from_who_may_not_see_the_change(client, outsider, ran_change):
    client.force_login(outsider)

    response = client.get(f"/changes/{ran_change.pk}/evidence.zip")

    assert response.status_code == 404
    denied = AuditEvent.objects.get(action="evidence.hidden")
    assert denied.outcome == "DENIED" and denied.username == "outsider"
    assert not AuditEvent.objects.filter(action="evidence.exported").exists()


def test_the_requester_may_take_their_own_changes_pack_and_it_is_audited(
    client, requester, ran_change
):
    client.force_login(requester)

    _download(client, ran_change)

    event = AuditEvent.objects.get(action="evidence.exported")
    assert (event.username, event.object_id) == ("requester", ran_change.public_id)
    assert event.details["key_id"] == signing.key_id()


def test_the_public_key_is_served_and_shown_on_reports(client, compliance):
    key = client.get("/reports/signing-key.pem")
    client.force_login(compliance)
    page = client.get("/reports/").content.decode()

    assert key.status_code == 200
    assert key.content.decode() == signing.public_key_pem()
    assert signing.key_id() in page and "BEGIN PUBLIC KEY" in page
