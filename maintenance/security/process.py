"""Running the programs an executor needs (pip, pg_dump, a health command): an argument
list, never a shell, a clean environment, a timeout, output streamed into the run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from maintenance.processes import read_output
from maintenance.security.executors.base import UpdateFailed

MAX_CAPTURE = 1_000_000
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    code: int
    output: str
    seconds: float


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    log: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    check: bool = True,
    what: str = "",
    echo: bool = True,
) -> Completed:
    """Run ``argv``; output goes to ``log`` as it comes (``echo``) and is returned.
    With ``check`` a non-zero exit or a timeout raises UpdateFailed."""
    label = what or Path(argv[0]).name
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=str(cwd) if cwd else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**BASE_ENV, **(env or {})},
            start_new_session=True,
        )
    except OSError as exc:
        raise UpdateFailed(f"{label} could not be started: {exc.strerror}.") from None
    chunks: list[bytes] = []

    def keep(piece: bytes) -> None:
        chunks.append(piece)
        if log is not None and echo:
            log(piece.decode("utf-8", "replace"))

    try:
        ended = read_output(proc, timeout=timeout, on_chunk=keep, limit=MAX_CAPTURE)
        timed_out = ended == "timed out"
        if timed_out:
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=10)
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done = Completed(
        argv=list(argv),
        code=code,
        output=b"".join(chunks).decode("utf-8", "replace"),
        seconds=round(time.monotonic() - started, 2),
    )
    if check and timed_out:
        raise UpdateFailed(f"{label} did not finish within {timeout:.0f} s and was stopped.")
    if check and code != 0:
        raise UpdateFailed(
            failure(f"{label} exited with status {code}", done.output), {"exit_code": code}
        )
    return done


def failure(message: str, output: str) -> str:
    """``message`` and the last lines the command printed: why it failed, in one line."""
    tail = output.strip().splitlines()[-3:]
    return message.rstrip(".") + (f": {' / '.join(tail)}" if tail else ".")
