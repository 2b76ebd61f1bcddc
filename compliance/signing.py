"""The portal's Ed25519 evidence-signing key (settings.EVIDENCE_SIGNING_KEY).

Kept like the secret key: a file in var/ outside production, an environment secret in
production. Only the public half is ever shown (Reports, /reports/signing-key.pem).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings


@lru_cache(maxsize=4)
def _key(seed_b64: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64))


def private_key() -> Ed25519PrivateKey:
    return _key(settings.EVIDENCE_SIGNING_KEY)


def public_key_raw() -> bytes:
    return (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def public_key_pem() -> str:
    return (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def key_id() -> str:
    """A short fingerprint people can compare: SHA-256 of the raw public key."""
    digest = hashlib.sha256(public_key_raw()).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def sign(data: bytes) -> str:
    return base64.b64encode(private_key().sign(data)).decode("ascii")
