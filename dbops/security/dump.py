"""pg_dump and pg_restore against a database target, without a shell.

The password goes in a 0600 passfile in the work directory, never on a command line, in
a message or in the log. A dump is taken in an exported snapshot, so the row counts the
executor records beside it describe exactly what the dump holds. A restore is one
transaction: ``pg_restore --clean --if-exists`` writes the script, ``psql
--single-transaction`` runs it after a prelude, and any error leaves the database as
it was before the restore began.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from dbops.models import DatabaseTarget
from maintenance.security import process
from maintenance.security.executors.base import UpdateFailed

APP_NAME = "change-portal"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def client_env(target: DatabaseTarget, workdir: Path) -> dict[str, str]:
    """libpq's environment for the client programs; the password only in a passfile."""
    env = {
        "PGHOST": target.host,
        "PGPORT": str(target.port),
        "PGUSER": target.user,
        "PGDATABASE": target.database,
        "PGSSLMODE": target.sslmode,
        "PGCONNECT_TIMEOUT": "5",
        "PGAPPNAME": APP_NAME,
    }
    password = target.get_password()
    if password:
        passfile = workdir / ".pgpass"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(
                ":".join(
                    _escape(v)
                    for v in (target.host, str(target.port), target.database, target.user)
                )
                + f":{_escape(password)}\n"
            )
        env["PGPASSFILE"] = str(passfile)
    return env


def client_version(program: str) -> str:
    done = process.run([program, "--version"], timeout=10, what=program, echo=False)
    return done.output.strip()


def dump(
    *,
    target: DatabaseTarget,
    workdir: Path,
    snapshot: str,
    schemas: list[str],
    timeout: float,
    log: Callable[[str], None],
) -> Path:
    path = workdir / f"{target.database}.dump"
    argv = ["pg_dump", "--format=custom", "--no-password", f"--file={path}"]
    argv.append(f"--snapshot={snapshot}")
    argv += [f"--schema={s}" for s in schemas]
    log(f"$ pg_dump --format=custom --snapshot=… {' '.join(argv[4:])} {target.database}\n")
    process.run(argv, timeout=timeout, log=log, env=client_env(target, workdir), what="pg_dump")
    return path


def _toc_entry(kind: str, name: str) -> re.Pattern:
    return re.compile(rf"^\s*\d+;\s+\d+\s+\d+\s+{kind}\s+-\s+{re.escape(name)}\s*$")


def restore_list(dump_path: Path, *, leave_out_extension: str, workdir: Path) -> Path:
    """The dump's table of contents without the extension's own entry: the prelude
    creates it at its old version, which ``CREATE EXTENSION IF NOT EXISTS`` in the dump
    (it names no version) would otherwise leave at the server's default."""
    done = process.run(
        ["pg_restore", "--list", str(dump_path)], timeout=120, what="pg_restore --list", echo=False
    )
    drop = (
        _toc_entry("EXTENSION", leave_out_extension),
        _toc_entry("COMMENT", f"EXTENSION {leave_out_extension}"),
    )
    lines = [line for line in done.output.splitlines() if not any(p.match(line) for p in drop)]
    path = workdir / "restore.list"
    path.write_text("\n".join(lines) + "\n")
    return path


def restore(
    *,
    target: DatabaseTarget,
    dump_path: Path,
    list_path: Path,
    prelude: str,
    workdir: Path,
    timeout: float,
    log: Callable[[str], None],
) -> float:
    """Restore the dump in one transaction; returns the seconds it took."""
    env = {**process.BASE_ENV, **client_env(target, workdir)}
    prelude_path = workdir / "prelude.sql"
    prelude_path.write_text(prelude)
    errors = workdir / "pg_restore.err"
    restore_argv = [
        "pg_restore",
        "--clean",
        "--if-exists",
        f"--use-list={list_path}",
        "--file=-",
        str(dump_path),
    ]
    psql_argv = [
        "psql",
        "--no-psqlrc",
        "--quiet",
        "--no-password",
        "--set=ON_ERROR_STOP=1",
        "--single-transaction",
        f"--file={prelude_path}",
        "--file=-",
    ]
    log("$ pg_restore --clean --if-exists --use-list=… | psql --single-transaction\n")
    started = time.monotonic()
    with errors.open("wb") as err:
        source = subprocess.Popen(
            restore_argv,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        sink = subprocess.Popen(
            psql_argv,
            stdin=source.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        source.stdout.close()  # psql holds the pipe now; pg_restore sees it close
        try:
            output, _ = sink.communicate(timeout=timeout)
            source.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sink.kill()
            source.kill()
            sink.wait()
            source.wait()
            raise UpdateFailed(f"The restore did not finish within {timeout:.0f} s.") from None
    text = output.decode("utf-8", "replace")
    if text.strip():
        log(text)
    problems = errors.read_text(errors="replace").strip()
    if problems:
        log(problems + "\n")
    if source.returncode != 0 or sink.returncode != 0:
        last = (text.strip() or problems).splitlines()[-1:] or ["no output"]
        raise UpdateFailed(
            f"The restore failed and was rolled back (pg_restore {source.returncode}, "
            f"psql {sink.returncode}): {last[0]}"
        )
    return round(time.monotonic() - started, 2)
