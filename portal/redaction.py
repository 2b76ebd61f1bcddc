"""Redaction of secrets and identifiers in procedure output (HIPAA 164.312(a)(1), (c)).

Script and procedure output is passed through ``redact`` before it is stored (the runner),
exported or shown, so a password a script echoes, a connection string in an error
message, or a patient's record number in a log line never reaches the database, an
export or a page. The patterns are data (``settings.REDACTION_PATTERNS``: a name and a
regular expression whose group ``secret``, or the whole match, is replaced) so an
installation can add its own identifiers without a code change.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from django.conf import settings

# (name, pattern). A named group "secret" limits what is replaced (the key before
# "password=" stays readable); without it the whole match is replaced.
DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "private-key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    ),
    # scheme://user:password@host — the password only.
    (
        "connection-string",
        r"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@'\"]+:(?P<secret>[^\s@'\"/]+)@",
    ),
    # password=…, PGPASSWORD: …, "api_key": "…", token=…, secret=…
    (
        "password",
        r"(?i)(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
        r"|auth[_-]?key|credentials?)[A-Za-z0-9_.-]*[\"']?\s*[:=]\s*"
        r"(?P<secret>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&\"']+)",
    ),
    ("bearer-token", r"(?i)\b(?:bearer|basic)\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    ("aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github-token", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    ("ssn", r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"),
    (
        "mrn",
        r"(?i)\b(?:MRN|medical[ _-]record(?:[ _-](?:number|no))?)\s*(?:[:#=-]|no\.?)?\s*"
        r"(?P<secret>[A-Z]{0,3}\d{5,12})\b",
    ),
)


@lru_cache(maxsize=8)
def _compiled(patterns: tuple[tuple[str, str], ...]) -> tuple[tuple[str, re.Pattern], ...]:
    return tuple((name, re.compile(pattern)) for name, pattern in patterns)


def patterns() -> tuple[tuple[str, re.Pattern], ...]:
    configured = getattr(settings, "REDACTION_PATTERNS", DEFAULT_PATTERNS)
    return _compiled(tuple((str(n), str(p)) for n, p in configured))


def _replacer(name: str):
    marker = f"[REDACTED:{name}]"

    def replace(match: re.Match) -> str:
        if "secret" in match.re.groupindex and match.group("secret") is not None:
            start, end = match.span("secret")
            offset = match.start()
            whole = match.group(0)
            return whole[: start - offset] + marker + whole[end - offset :]
        return marker

    return replace


def redact(text: str) -> str:
    """``text`` with every configured secret or identifier replaced by a marker."""
    if not text:
        return text
    for name, pattern in patterns():
        text = pattern.sub(_replacer(name), text)
    return text


def redact_data(value: Any) -> Any:
    """The same for every string inside JSON-like data (step and run results)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(item) for item in value]
    return value


def validate(configured) -> None:
    """Raise ValueError naming the first pattern that does not compile (start-up check)."""
    for name, pattern in configured:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"redaction pattern {name!r} does not compile: {exc}") from None
