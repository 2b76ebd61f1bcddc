"""Restarting a target the portal controls, with the command configured on it.

The command is split like a shell would split it but run without one, with a timeout;
its output goes to a file rather than a pipe, because a server it starts inherits the
descriptors and would hold a pipe open for as long as it runs.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
import time

import psycopg

from dbops.connections import TargetUnavailable, connect
from dbops.models import DatabaseTarget

COMMAND_TIMEOUT = 180
READY_TIMEOUT = 60.0
MAX_OUTPUT = 20_000


class RestartFailed(Exception):
    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.message = message
        self.output = output


def command_of(target: DatabaseTarget) -> list[str]:
    if not target.restartable or not target.restart_command.strip():
        raise RestartFailed(f"{target.name} is not marked restartable with a restart command.")
    try:
        return shlex.split(target.restart_command)
    except ValueError as exc:
        raise RestartFailed(f"The restart command cannot be read: {exc}.") from None


def restart(target: DatabaseTarget, *, log) -> dict:
    """Run the restart command, then wait until the server accepts connections again."""
    args = command_of(target)
    log(f"$ {shlex.join(args)}\n")
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as out:
        try:
            # The admin-configured command, split but run without a shell.
            code = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=COMMAND_TIMEOUT,
                check=False,
            ).returncode
        except FileNotFoundError:
            raise RestartFailed(f"The restart command {args[0]!r} was not found.") from None
        except subprocess.TimeoutExpired:
            raise RestartFailed(
                f"The restart command did not finish within {COMMAND_TIMEOUT} s."
            ) from None
        out.seek(0)
        output = out.read()[-MAX_OUTPUT:]
    log(output if output.endswith("\n") or not output else output + "\n")
    if code != 0:
        raise RestartFailed(f"The restart command exited with status {code}.", output)
    started_at = wait_until_ready(target)
    return {
        "command": shlex.join(args),
        "exit_status": code,
        "seconds": round(time.monotonic() - started, 2),
        "server_started_at": started_at,
    }


def wait_until_ready(target: DatabaseTarget, timeout: float = READY_TIMEOUT) -> str:
    """pg_postmaster_start_time() once a connection succeeds."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with connect(target) as conn:
                return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0].isoformat()
        except (TargetUnavailable, psycopg.Error) as exc:
            last = getattr(exc, "message", str(exc))
            time.sleep(0.25)
    raise RestartFailed(f"The server did not accept connections within {timeout:.0f} s: {last}")
