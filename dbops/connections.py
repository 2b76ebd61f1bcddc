"""The one way the portal connects to a database target (psycopg 3).

Every connection names itself "change-portal" in pg_stat_activity, gives up after
CONNECT_TIMEOUT seconds and carries a statement timeout. A failure to connect becomes
``TargetUnavailable`` with a message a person can act on; the password is never part
of any message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from dbops.crypto import SecretUnreadable
from dbops.models import DatabaseTarget

APPLICATION_NAME = "change-portal"
CONNECT_TIMEOUT = 5
STATEMENT_TIMEOUT_MS = 15_000
# Monitoring reads give up rather than queue behind a maintenance lock.
LOCK_TIMEOUT_MS = 3_000


class TargetUnavailable(Exception):
    """The target could not be reached or refused the login."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


_LOGIN_REFUSED = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "is not permitted to log in",
    "authentication failed",
    "permission denied for database",
)


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "********") if secret else text


def _server_reason(text: str) -> str:
    """The most useful line of a libpq connection error."""
    fatal = re.search(r"FATAL:\s+(.+)", text)
    if fatal:
        return fatal.group(1).strip()
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return re.sub(r"^connection failed:\s*", "", last).strip()


def describe_failure(target: DatabaseTarget, exc: Exception, password: str = "") -> str:
    text = _scrub(str(exc), password)
    where = f"{target.host}:{target.port}"
    reason = _server_reason(text)
    lowered = text.lower()
    if any(marker in lowered for marker in _LOGIN_REFUSED):
        return (
            f"The server at {where} refused the login of user “{target.user}” to database "
            f"“{target.database}”: {reason}. Check the user name, the password and the "
            "server's pg_hba.conf."
        )
    if "connection refused" in lowered:
        return (
            f"Nothing accepts connections at {where} (connection refused). Check the host, "
            "the port and that PostgreSQL is running."
        )
    if "timeout expired" in lowered or "timed out" in lowered:
        return (
            f"{where} did not answer within {CONNECT_TIMEOUT} seconds. "
            "Check the host and any firewall."
        )
    if "translate host name" in lowered or "name or service not known" in lowered:
        return f"The host name “{target.host}” cannot be resolved."
    if "ssl" in lowered:
        return f"The TLS negotiation with {where} failed (sslmode={target.sslmode}): {reason}."
    return f"Could not connect to {where}: {reason or 'unknown error'}."


def query_failure(exc: psycopg.Error) -> str:
    """A short, safe description of a failed query (the server's own message)."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or str(exc).strip().splitlines()[0]


@contextmanager
def connect(
    target: DatabaseTarget,
    *,
    autocommit: bool = True,
    statement_timeout_ms: int | None = STATEMENT_TIMEOUT_MS,
    lock_timeout_ms: int | None = LOCK_TIMEOUT_MS,
) -> Iterator[psycopg.Connection]:
    """A connection to the target, closed on exit (rolled back on an error)."""
    try:
        password = target.get_password()
    except SecretUnreadable as exc:
        raise TargetUnavailable(str(exc)) from None
    options = []
    if statement_timeout_ms:
        options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    if lock_timeout_ms:
        options.append(f"-c lock_timeout={int(lock_timeout_ms)}")
    try:
        conn = psycopg.connect(
            host=target.host,
            port=target.port,
            dbname=target.database,
            user=target.user,
            password=password or None,
            sslmode=target.sslmode,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=APPLICATION_NAME,
            options=" ".join(options) or None,
            autocommit=autocommit,
        )
    except psycopg.Error as exc:
        # Raised from None: the original exception carries the connection parameters.
        raise TargetUnavailable(describe_failure(target, exc, password)) from None
    with conn:
        yield conn
