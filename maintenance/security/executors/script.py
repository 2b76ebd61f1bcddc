"""A component updated by allow-listed scripts: explicit discover, backup, patch, verify
and rollback scripts from MAINTENANCE_SCRIPTS_DIR, run without a shell exactly like the
"Maintenance script" procedure runs its scripts.

Calling conventions (arguments only, no environment beyond the script procedure's):
- discover:          prints one ``name==version`` per line (or a JSON object name→version)
- available (opt.):  ``<package> <target>``; exit 0 when the target can be installed
- backup:            ``<package> <current> <backup-file>``; must write the backup file
- patch:             ``<package> <target> <patch-id>``, once per patch
- verify:            ``<package> <version>``; exit 0 when the component works at it
- rollback:          ``<package> <previous> <backup-file>``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from maintenance.procedures.base import RunContext, StepFailed
from maintenance.procedures.script import ScriptRefused, resolve_script, run_script
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

ROLES = ("discover", "backup", "patch", "verify", "rollback")
OPTIONAL = ("available",)


def _context(work: Work, log) -> RunContext:
    return RunContext(
        run_id=work.run_id,
        params={},
        change_id=work.change_id,
        window_end=None,
        log=log,
        set_progress=lambda pct: None,
    )


def _run(config: dict[str, Any], role: str, args: list[str], work: Work, *, echo=True) -> str:
    captured: list[str] = []

    def log(text: str) -> None:
        captured.append(text)
        if echo:
            work.log(text)

    name = config[role]
    try:
        run_script(name, args, timeout=int(config["timeout_seconds"]), ctx=_context(work, log))
    except ScriptRefused as exc:
        raise UpdateFailed(str(exc)) from None
    except StepFailed as exc:
        # What the script said last is why it failed, as for the other executors.
        raise UpdateFailed(process.failure(exc.message, "".join(captured)), exc.result) from None
    return "".join(captured)


def parse_inventory(output: str, ecosystem: str) -> list[Installed]:
    text = output.strip()
    pairs: dict[str, str] = {}
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise UpdateFailed("The discover script printed invalid JSON.") from None
        pairs = {str(k): str(v) for k, v in data.items()}
    else:
        for line in text.splitlines():
            name, sep, version = line.strip().partition("==")
            if sep and name.strip() and version.strip():
                pairs[name.strip()] = version.strip()
    return [
        Installed(ecosystem, versions.normalise_name(ecosystem, n), v[:100])
        for n, v in sorted(pairs.items())
    ]


@register
class AllowListedScripts(Executor):
    kind = "script"
    label = "Allow-listed scripts"
    description = "Explicit discover, backup, patch, verify and rollback scripts, no shell."
    rollback_text = "Run the rollback script with the backup file taken before the patch."
    patches_apply_separately = True

    def clean_config(self, component: Component, config: dict[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for role in ROLES + OPTIONAL:
            name = str(config.get(role) or "")
            if not name and role in OPTIONAL:
                continue
            if not name:
                raise ExecutorRefused(f"Name the {role} script.")
            try:
                clean[role] = resolve_script(name).name
            except ScriptRefused as exc:
                raise ExecutorRefused(f"{role} script: {exc}") from None
        ecosystem = str(config.get("ecosystem") or versions.GENERIC)
        if ecosystem not in versions.ECOSYSTEMS:
            raise ExecutorRefused(f"Ecosystem is one of {', '.join(versions.ECOSYSTEMS)}.")
        timeout = int(config.get("timeout_seconds") or 600)
        if not 1 <= timeout <= 4 * 3600:
            raise ExecutorRefused("The scripts' timeout is 1 s to 4 h.")
        return {**clean, "ecosystem": ecosystem, "timeout_seconds": timeout}

    def discover(self, component, config) -> list[Installed]:
        output = _run(config, "discover", [], Work(log=lambda _t: None), echo=False)
        return parse_inventory(output, config.get("ecosystem", versions.GENERIC))

    def plan(self, component, config, package, target) -> Plan:
        ecosystem = config.get("ecosystem", versions.GENERIC)
        name = versions.normalise_name(ecosystem, package)
        found = {i.name: i.version for i in self.discover(component, config)}
        if name not in found:
            raise ExecutorRefused(f"The discover script of {component} does not list {package}.")
        compare = versions.comparator(ecosystem)
        try:
            newer = compare(target, found[name]) > 0
        except versions.VersionUnparsable as exc:
            raise ExecutorRefused(str(exc)) from None
        if not newer:
            raise ExecutorRefused(f"{name} is at {found[name]}; the target {target} is not newer.")
        if config.get("available"):
            try:
                _run(config, "available", [name, target], Work(log=lambda _t: None), echo=False)
            except UpdateFailed:
                raise ExecutorRefused(
                    f"{name} {target} is not available (the check said no)."
                ) from None
        return Plan(ecosystem, name, found[name], f"{config['patch']} {name} {target}")

    def open(self, component, config, work: Work) -> Session:
        return _ScriptSession(self, component, config, work)


class _ScriptSession(Session):
    def __init__(self, executor, component, config, work: Work):
        self.executor, self.component, self.config, self.work = executor, component, config, work

    def version(self, update) -> str | None:
        found = {i.name: i.version for i in self.executor.discover(self.component, self.config)}
        return found.get(update.package)

    def backup(self, update) -> BackupFile:
        path = self.work.workdir / "backup.bin"
        _run(self.config, "backup", [update.package, update.current_version, str(path)], self.work)
        if not path.is_file() or path.stat().st_size == 0:
            raise UpdateFailed("The backup script wrote no backup file.")
        return BackupFile(path=path, kind="script", metadata={"script": self.config["backup"]})

    def apply(self, update, patch) -> dict[str, Any]:
        patch_id = patch.id if patch is not None else "-"
        _run(self.config, "patch", [update.package, update.target_version, patch_id], self.work)
        return {"patch": patch_id, "script": self.config["patch"]}

    def verify(self, update) -> dict[str, Any]:
        _run(self.config, "verify", [update.package, update.target_version], self.work)
        return {"script": self.config["verify"]}

    def rollback(self, update, backup: Path, metadata: dict[str, Any]) -> dict[str, Any]:
        previous = update.current_version
        _run(self.config, "rollback", [update.package, previous, str(backup)], self.work)
        _run(self.config, "verify", [update.package, previous], self.work)
        return {"script": self.config["rollback"]}
