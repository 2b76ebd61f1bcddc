"""Building blocks for the security-update tests: a tiny package written as real wheels
(the wheel spec, PEP 427, with the standard library's zipfile), a throwaway virtual
environment that runs it, OSV records, and components with their executors."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from maintenance.security.models import ComponentExecutor
from tests.factories import ComponentFactory

PACKAGE = "tinypkg"
# 1.2 installs fine but its health check fails: the update a health command must catch.
HEALTHY = {"1.0": True, "1.1": True, "1.2": False}


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(directory: Path, version: str, *, healthy: bool = True) -> Path:
    """``tinypkg-<version>-py3-none-any.whl``: a module, a health module, dist-info."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{PACKAGE}-{version}.dist-info"
    files = {
        f"{PACKAGE}/__init__.py": f'VERSION = "{version}"\n',
        f"{PACKAGE}/health.py": (
            "import sys\n"
            f"from {PACKAGE} import VERSION\n"
            f'print("{PACKAGE}", VERSION, "healthy" if {healthy!r} else "broken")\n'
            f"sys.exit(0 if {healthy!r} else 3)\n"
        ),
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n"
            "Summary: A package the security-update tests build and patch\n"
        ),
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: portal-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    path = directory / f"{PACKAGE}-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, text in files.items():
            data = text.encode()
            wheel.writestr(name, data)
            record.append(f"{name},{_record_hash(data)},{len(data)}")
        record.append(f"{dist}/RECORD,,")
        wheel.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


def build_wheels(directory: Path) -> Path:
    for version, healthy in HEALTHY.items():
        build_wheel(directory, version, healthy=healthy)
    return directory


def make_environment(path: Path, wheels: Path, version: str = "1.0") -> Path:
    """A real virtual environment with pip, running tinypkg ``version``."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run(
        [
            str(path / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
            str(wheels),
            f"{PACKAGE}=={version}",
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="session")
def environment_template(tmp_path_factory) -> tuple[Path, Path]:
    """The wheels and one environment at tinypkg 1.0, built once; tests copy it."""
    base = tmp_path_factory.mktemp("security-env")
    wheels = build_wheels(base / "wheels")
    return wheels, make_environment(base / "template", wheels)


def copy_environment(template: Path, path: Path) -> Path:
    """A copy is a working environment at its new place: bin/python links to the base
    interpreter and ``python -m pip`` finds site-packages beside it."""
    shutil.copytree(template, path, symlinks=True)
    return path


def installed_version(env: Path) -> str:
    done = subprocess.run(
        [str(env / "bin" / "python"), "-c", f"import {PACKAGE}; print({PACKAGE}.VERSION)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def write_executables(directory: Path, bodies: dict[str, str]) -> Path:
    """Allow-listed scripts for a script executor: each ``name: body``, executable."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in bodies.items():
        (directory / name).write_text(body)
        (directory / name).chmod(0o755)
    return directory


def executor_for(component_name: str, kind: str, config: dict, *, tenants=()):
    """A component with its executor, straight in the table (registering has its own
    tests through the service)."""
    from maintenance.security import executors

    component = ComponentFactory(name=component_name)
    clean = executors.get(kind).clean_config(component, config)
    row = ComponentExecutor.objects.create(component=component, kind=kind, config=clean)
    row.tenants.set(tenants)
    return row


def osv_record(
    osv_id: str,
    *,
    ecosystem: str,
    name: str,
    fixed: str | None,
    introduced: str = "0",
    severity: str = "HIGH",
    aliases: tuple[str, ...] = (),
    published: str = "2024-03-01T00:00:00Z",
    modified: str = "2024-03-02T00:00:00Z",
    summary: str = "",
) -> dict:
    events = [{"introduced": introduced}] + ([{"fixed": fixed}] if fixed else [])
    return {
        "schema_version": "1.6.0",
        "id": osv_id,
        "modified": modified,
        "published": published,
        "aliases": list(aliases),
        "summary": summary or f"{name} before {fixed or 'any fix'} lets a crafted input through",
        "details": "Found by the portal's tests.",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
        "database_specific": {"severity": severity},
    }


def osv_bytes(*records: dict) -> bytes:
    return json.dumps(records[0] if len(records) == 1 else list(records)).encode()


def run_now(change, operator):
    """The framework's own services and runner, called in this thread (no broker)."""
    from maintenance import runner
    from maintenance.models import ProcedureRun
    from maintenance.services import execution_advance, window_start
    from tests.maintenance.execution_helpers import schedule_all, wait_until, window_opening_soon

    window = window_opening_soon(seconds=1)
    schedule_all([change], window, operator)
    wait_until(lambda: window.is_open(), timeout=5, what="the window to open")
    execution = window_start(window=window, by=operator)
    execution_advance(execution_id=execution.pk)
    run = ProcedureRun.objects.get(change=change)
    runner.execute_run(run_id=run.pk)
    execution_advance(execution_id=execution.pk)
    run.refresh_from_db()
    return run


def inventoried(name: str, packages: dict[tuple[str, str], str], *, tenants=(), since=None):
    """A component whose inventory already holds ``packages`` ((ecosystem, name) →
    version), for tests about advisories and pages rather than discovery."""
    from django.utils import timezone

    from maintenance.security.models import InstalledPackage

    component = ComponentFactory(name=name)
    row = ComponentExecutor.objects.create(component=component, kind="script", config={})
    row.tenants.set(tenants)
    when = since or timezone.now()
    for (ecosystem, package), version in packages.items():
        InstalledPackage.objects.create(
            executor=row,
            ecosystem=ecosystem,
            name=package,
            version=version,
            first_seen_at=when,
            version_since=when,
            last_seen_at=when,
        )
    return row
