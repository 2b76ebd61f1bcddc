"""The Python packages of a service's virtual environment.

Only environments directly inside SECURITY_ENVIRONMENTS_DIR are touched (checked when
the executor is configured and again each time it runs). Discovery is ``pip list``;
backup is ``pip freeze --all`` plus a tar.gz copy of the whole environment; the patch
is ``pip install name==target`` from SECURITY_WHEEL_DIR (``--no-index --find-links``)
or SECURITY_PACKAGE_INDEX_URL; verification is ``pip check``, the installed version
and the service's health command; rollback puts the copied environment back in place
and verifies it again (same frozen requirements, ``pip check``, health command).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tarfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from maintenance.procedures.script import ScriptRefused, resolve_script
from maintenance.security import process, versions
from maintenance.security.executors import register
from maintenance.security.executors.base import (
    BackupFile,
    Executor,
    ExecutorRefused,
    Installed,
    Plan,
    Session,
    UpdateFailed,
    Work,
)
from portal.models import Component

PIP_ENV = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PYTHONNOUSERSITE": "1",
}
LIST_TIMEOUT = 120


def environments_dir() -> Path:
    return Path(settings.SECURITY_ENVIRONMENTS_DIR).resolve()


def resolve_environment(name: str) -> Path:
    """The allow-listed virtual environment called ``name`` (a directory name inside
    SECURITY_ENVIRONMENTS_DIR, or its full path), or ExecutorRefused saying why not."""
    if not name or "\x00" in name or len(name) > 500:
        raise ExecutorRefused("Name the environment's directory.")
    base = environments_dir()
    raw = Path(name)
    path = (raw if raw.is_absolute() else base / raw).resolve()
    if path.parent != base or path.name.startswith("."):
        raise ExecutorRefused(
            f"{name!r} is outside the allow-listed environments directory {base} "
            "(SECURITY_ENVIRONMENTS_DIR); only environments directly inside it are used."
        )
    if not (path / "pyvenv.cfg").is_file() or not (path / "bin" / "python").exists():
        raise ExecutorRefused(f"{name!r} is not a virtual environment (no pyvenv.cfg, bin/python).")
    return path


def _program(env: Path, argv: list[str]) -> list[str]:
    """A health or check command: a program of the environment's bin/ or an allow-listed
    maintenance script, never anything else."""
    if not argv:
        raise ExecutorRefused("The command is empty.")
    name = argv[0]
    if "/" not in name and (env / "bin" / name).is_file():
        return [str(env / "bin" / name), *argv[1:]]
    try:
        return [str(resolve_script(name)), *argv[1:]]
    except ScriptRefused:
        raise ExecutorRefused(
            f"{name!r} is neither a program in {env.name}/bin nor an allow-listed script."
        ) from None


def split_command(raw: str) -> list[str]:
    try:
        argv = shlex.split(raw or "")
    except ValueError as exc:
        raise ExecutorRefused(f"The command could not be read: {exc}.") from None
    if len(argv) > 30 or any(len(a) > 500 or "\x00" in a for a in argv):
        raise ExecutorRefused("A command has at most 30 arguments of at most 500 characters.")
    return argv


def pip_source() -> tuple[list[str], str]:
    """pip's arguments for where target versions come from, and how to name it."""
    if settings.SECURITY_WHEEL_DIR:
        wheels = Path(settings.SECURITY_WHEEL_DIR).resolve()
        if not wheels.is_dir():
            raise ExecutorRefused(f"SECURITY_WHEEL_DIR {wheels} is not a directory.")
        return ["--no-index", "--find-links", str(wheels)], f"the wheel directory {wheels}"
    if settings.SECURITY_PACKAGE_INDEX_URL:
        url = settings.SECURITY_PACKAGE_INDEX_URL
        return ["--index-url", url], f"the package index {url}"
    raise ExecutorRefused(
        "No package source: set SECURITY_WHEEL_DIR (a wheel directory) or "
        "SECURITY_PACKAGE_INDEX_URL."
    )


def _pip(env: Path, args: list[str], *, log=None, timeout: float = LIST_TIMEOUT, **kwargs):
    return process.run(
        [str(env / "bin" / "python"), "-m", "pip", *args],
        timeout=timeout,
        log=log,
        env=PIP_ENV,
        cwd=env,
        what=f"pip {args[0]}",
        **kwargs,
    )


def installed_versions(env: Path) -> dict[str, str]:
    done = _pip(env, ["list", "--format", "json"], echo=False)
    try:
        rows = json.loads(done.output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise UpdateFailed(f"pip list in {env.name} did not answer JSON.") from None
    return {canonicalize_name(r["name"]): r["version"] for r in rows}


def _version(value: str) -> Version:
    try:
        return Version(value)
    except InvalidVersion:
        raise ExecutorRefused(f"{value!r} is not a PEP 440 version.") from None


@register
class PythonEnvironment(Executor):
    kind = "python_environment"
    label = "Python packages of a service environment"
    description = "pip in an allow-listed virtual environment, backed up as a whole."
    rollback_text = (
        "Put the copy of the environment taken before the patch back in place, then check "
        "its frozen requirements, pip check and the health command again."
    )

    def clean_config(self, component: Component, config: dict[str, Any]) -> dict[str, Any]:
        env = resolve_environment(str(config.get("environment", "")))
        health = config.get("health_command", "")
        argv = health if isinstance(health, list) else split_command(str(health))
        if argv:
            _program(env, argv)
        timeout = int(config.get("health_timeout_seconds") or 60)
        if not 1 <= timeout <= 3600:
            raise ExecutorRefused("The health command's timeout is 1 to 3600 seconds.")
        return {"environment": env.name, "health_command": argv, "health_timeout_seconds": timeout}

    def discover(self, component: Component, config: dict[str, Any]) -> list[Installed]:
        env = resolve_environment(config.get("environment", ""))
        found = installed_versions(env)
        return [Installed(versions.PYPI, name, version) for name, version in sorted(found.items())]

    def plan(self, component, config, package, target) -> Plan:
        env = resolve_environment(config.get("environment", ""))
        name = canonicalize_name(package)
        found = installed_versions(env)
        if name not in found:
            raise ExecutorRefused(f"{package} is not installed in the environment {env.name}.")
        current = found[name]
        if _version(target) <= _version(current):
            raise ExecutorRefused(
                f"{name} is at {current} in {env.name}; the target {target} is not newer."
            )
        source, where = pip_source()
        probe = _pip(
            env,
            ["install", "--dry-run", "--no-deps", "--quiet", *source, f"{name}=={target}"],
            check=False,
            echo=False,
        )
        if probe.code != 0:
            raise ExecutorRefused(f"{name} {target} is not available from {where}.")
        return Plan(versions.PYPI, name, current, f"pip install {name}=={target}")

    def check_kinds(self) -> tuple[str, ...]:
        return ("command",)

    def check_command(self, component, config, argv) -> None:
        _program(resolve_environment(config.get("environment", "")), argv)

    def open(self, component, config, work: Work) -> Session:
        return _EnvironmentSession(resolve_environment(config.get("environment", "")), config, work)


class _EnvironmentSession(Session):
    def __init__(self, env: Path, config: dict[str, Any], work: Work):
        self.env, self.config, self.work = env, config, work
        self.applied = False

    def version(self, update) -> str | None:
        return installed_versions(self.env).get(canonicalize_name(update.package))

    def _freeze(self) -> str:
        return _pip(self.env, ["freeze", "--all"], echo=False).output

    def backup(self, update) -> BackupFile:
        freeze = self._freeze()
        path = self.work.workdir / f"{self.env.name}.tar.gz"
        requirements = self.work.workdir / "requirements.txt"
        requirements.write_text(freeze)
        self.work.log(f"pip freeze --all: {len(freeze.splitlines())} requirements\n")
        with tarfile.open(path, "w:gz", compresslevel=6) as archive:
            archive.add(requirements, arcname="requirements.txt")
            archive.add(self.env, arcname="env")
        self.work.log(f"Copied {self.env} into {path.name} ({path.stat().st_size} bytes)\n")
        return BackupFile(
            path=path,
            kind="python-environment",
            metadata={"environment": str(self.env), "requirements": freeze[:100_000]},
        )

    def apply(self, update, patch) -> dict[str, Any]:
        requirement = f"{canonicalize_name(update.package)}=={update.target_version}"
        if self.applied:
            return {"included_in": f"pip install {requirement}"}
        source, _ = pip_source()
        self.work.log(f"$ pip install {requirement}\n")
        done = _pip(
            self.env,
            ["install", "--no-input", *source, requirement],
            log=self.work.log,
            timeout=self.work.timeout_seconds,
        )
        self.applied = True
        return {"installed": requirement, "seconds": done.seconds}

    def _health(self, argv: list[str], label: str) -> dict[str, Any]:
        command = _program(self.env, argv)
        self.work.log(f"$ {shlex.join(argv)}\n")
        done = process.run(
            command,
            timeout=int(self.config.get("health_timeout_seconds") or 60),
            log=self.work.log,
            cwd=self.env,
            env={"VIRTUAL_ENV": str(self.env), "PATH": f"{self.env / 'bin'}:/usr/bin:/bin"},
            what=label,
        )
        return {"command": shlex.join(argv), "exit_code": done.code, "seconds": done.seconds}

    def _check_environment(self, *, extra: list[list[str]]) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        self.work.log("$ pip check\n")
        _pip(self.env, ["check"], log=self.work.log)
        checked["pip_check"] = "no broken requirements"
        if self.config.get("health_command"):
            checked["health"] = self._health(self.config["health_command"], "the health command")
        checked["commands"] = [self._health(argv, shlex.join(argv)) for argv in extra]
        return checked

    def verify(self, update) -> dict[str, Any]:
        checked = self._check_environment(
            extra=[c.argv for c in update.checks if c.kind == "command"]
        )
        now = self.version(update)
        if now != update.target_version:
            raise UpdateFailed(f"{update.package} is at {now}, expected {update.target_version}.")
        return {**checked, "version": now}

    def rollback(self, update, backup: Path, metadata: dict[str, Any]) -> dict[str, Any]:
        stamp = timezone.now().strftime("%Y%m%d%H%M%S")
        parent = self.env.parent
        staging = parent / f".{self.env.name}.restore-{stamp}"
        aside = parent / f".{self.env.name}.patched-{stamp}"
        with tarfile.open(backup, "r:gz") as archive:
            # Our own archive, its SHA-256 checked on the way out of storage; "tar" keeps
            # the environment's absolute interpreter symlink, which "data" refuses.
            archive.extractall(staging, filter="tar")
        os.rename(self.env, aside)
        try:
            os.rename(staging / "env", self.env)
        except OSError:
            os.rename(aside, self.env)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(aside, ignore_errors=True)
        self.work.log(f"Restored {self.env} from the backup\n")
        freeze = self._freeze()
        if freeze.strip() != metadata.get("requirements", "").strip():
            raise UpdateFailed(
                "The restored environment's frozen requirements differ from the backup."
            )
        checked = self._check_environment(extra=[])
        return {**checked, "requirements": "as frozen before the patch"}
