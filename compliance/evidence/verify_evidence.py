#!/usr/bin/env python3
"""Verify a Change & Maintenance Portal evidence pack, offline, with Python 3 alone.

    python3 verify_evidence.py CHG-000123-evidence.zip --public-key signing-key.pem

Checks, and names the first thing that does not match:
  1. the signature of manifest.json (Ed25519; needs the `cryptography` package, and
     is reported as not checked without it) against the portal's public key
     (downloaded from /reports/signing-key.pem; without --public-key the key inside the
     pack is used, which only proves the pack is unchanged since someone signed it);
  2. the SHA-256 and size of every file the manifest lists, and that no file was added;
  3. every audit event: its hash recomputed from its content and its previous hash,
     each event the manifest lists is present, and consecutive events link up.

The argument may be the .zip or the folder it was extracted to. Exit status: 0 when
everything matches, 1 when something does not, 2 when the pack cannot be read.
Uses the standard library only (plus `cryptography`, where installed, for the signature).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import itertools
import json
import sys
import zipfile
from pathlib import Path

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
EVENTS = "events.json"
# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class Pack:
    """The pack's files by name, from a zip or a folder."""

    def __init__(self, path: Path):
        self.files: dict[str, bytes] = {}
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file():
                    self.files[item.relative_to(path).as_posix()] = item.read_bytes()
        else:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        self.files[info.filename] = archive.read(info)


def read_public_key(pem_path: Path) -> bytes:
    lines = pem_path.read_text("ascii").strip().splitlines()
    body = "".join(line for line in lines if not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        raise ValueError(f"{pem_path} is not an Ed25519 public key in PEM form")
    return der[len(ED25519_SPKI_PREFIX) :]


def fingerprint(raw: bytes) -> str:
    digest = hashlib.sha256(raw).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def check_signature(pack: Pack, manifest: dict, trusted: bytes | None, out: list[str]) -> str:
    """'' when it holds; a problem otherwise. Notes what was not checked in ``out``."""
    declared = manifest.get("signature") or {}
    try:
        embedded = base64.b64decode(declared.get("public_key", ""), validate=True)
        signature = base64.b64decode(pack.files.get(SIGNATURE, b"").strip(), validate=True)
    except (binascii.Error, ValueError):
        return f"{SIGNATURE}: the signature or the manifest's public key is not base64"
    if not signature:
        return f"{SIGNATURE}: missing; the manifest is not signed"
    key = trusted if trusted is not None else embedded
    if trusted is not None and embedded != trusted:
        return (
            f"{MANIFEST}: signed with another key (key {fingerprint(embedded)}), not the "
            f"portal's ({fingerprint(trusted)})"
        )
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        out.append(
            "signature NOT checked: install the `cryptography` package to check it "
            "(file and event checks below do not need it)"
        )
        return ""
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, pack.files[MANIFEST])
    except (InvalidSignature, ValueError):
        return f"{MANIFEST}: the signature does not match (the manifest was changed or re-signed)"
    source = "the portal's key" if trusted is not None else "the key inside the pack"
    out.append(f"signature valid ({source}, {fingerprint(key)})")
    if trusted is None:
        out.append("pass --public-key signing-key.pem (from /reports/) to check it is the portal's")
    return ""


def check_files(pack: Pack, manifest: dict) -> list[str]:
    problems = []
    listed = manifest.get("files") or {}
    for name, expected in listed.items():
        data = pack.files.get(name)
        if data is None:
            problems.append(f"{name}: listed in the manifest but missing from the pack")
        elif hashlib.sha256(data).hexdigest() != expected.get("sha256"):
            problems.append(f"{name}: SHA-256 does not match the manifest (the file was changed)")
        elif len(data) != expected.get("bytes"):
            problems.append(f"{name}: size does not match the manifest")
    for name in sorted(set(pack.files) - set(listed) - {MANIFEST, SIGNATURE}):
        problems.append(f"{name}: not listed in the manifest (the file was added)")
    return problems


def event_hash(event: dict) -> str:
    """As the portal computes it: SHA-256 of the previous hash and the canonical JSON of
    the event's content (sorted keys, no spaces, UTF-8)."""
    content = {k: v for k, v in event.items() if k not in ("prev_hash", "hash")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((event.get("prev_hash", "") + canonical).encode("utf-8")).hexdigest()


def check_events(pack: Pack, manifest: dict) -> list[str]:
    problems = []
    try:
        events = json.loads(pack.files.get(EVENTS, b"[]"))
    except ValueError:
        return [f"{EVENTS}: not valid JSON"]
    by_sequence = {e.get("sequence"): e for e in events if isinstance(e, dict)}
    listed = {e["sequence"]: e["hash"] for e in manifest.get("events") or []}
    for sequence in sorted(listed):
        event = by_sequence.get(sequence)
        if event is None:
            problems.append(f"event #{sequence}: listed in the manifest but missing (removed)")
        elif event_hash(event) != event.get("hash"):
            problems.append(f"event #{sequence}: its content does not match its hash (altered)")
        elif event.get("hash") != listed[sequence]:
            problems.append(f"event #{sequence}: its hash is not the one the manifest lists")
    for sequence in sorted(set(by_sequence) - set(listed), key=str):
        problems.append(f"event #{sequence}: not listed in the manifest (added)")
    ordered = sorted(s for s in by_sequence if isinstance(s, int))
    for before, after in itertools.pairwise(ordered):
        if after == before + 1 and by_sequence[after].get("prev_hash") != by_sequence[before].get(
            "hash"
        ):
            problems.append(f"event #{after}: does not link to event #{before}")
    head = (manifest.get("chain_head") or {}).get("sequence", 0)
    if ordered and ordered[-1] > head:
        problems.append(f"event #{ordered[-1]}: newer than the chain head #{head} the pack names")
    return problems


def verify(path: Path, public_key: Path | None) -> tuple[bool, list[str]]:
    pack = Pack(path)
    if MANIFEST not in pack.files:
        raise ValueError(f"{path} has no {MANIFEST}: not an evidence pack")
    manifest = json.loads(pack.files[MANIFEST])
    trusted = read_public_key(public_key) if public_key else None
    notes: list[str] = []
    problems = []
    signature_problem = check_signature(pack, manifest, trusted, notes)
    if signature_problem:
        problems.append(signature_problem)
    # Events before files: a removed event is named, not only the file it was cut from.
    problems += check_events(pack, manifest)
    problems += check_files(pack, manifest)
    lines = []
    if problems:
        lines.append(f"FAILED: {problems[0]}")
        lines += [f"  also: {p}" for p in problems[1:]]
    else:
        head = manifest.get("chain_head") or {}
        lines.append(
            f"OK: {manifest.get('change')}: {len(manifest.get('files') or {})} files and "
            f"{len(manifest.get('events') or [])} audit events match; chain head "
            f"#{head.get('sequence')} {head.get('hash')}"
        )
    lines += [f"  {note}" for note in notes]
    return not problems, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pack", type=Path, help="the evidence .zip or its extracted folder")
    parser.add_argument("--public-key", type=Path, help="the portal's signing-key.pem")
    args = parser.parse_args(argv)
    try:
        ok, lines = verify(args.pack, args.public_key)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
