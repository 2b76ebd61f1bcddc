"""The "Security update" procedure kind (seed: applySecurityUpdates).

Its parameters are the updates themselves, checked against the live components when the
procedure is added (unknown component, target not available: refused), stored in the
change so that what was approved is what runs. In the window each update is one step,
run in order; a failing one is rolled back from its backup and the next one still runs.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms

from maintenance.procedures import register
from maintenance.procedures.base import Procedure, RunContext, StepFailed, StepSpec
from maintenance.security import executors
from maintenance.security.executors.base import ExecutorRefused, UpdateFailed
from maintenance.security.executors.pyenv import split_command
from maintenance.security.models import ComponentExecutor, UpdateResult
from maintenance.security.spec import CheckSpec, PatchSpec, UpdateSpec, updates_of

MAX_UPDATES = 20
BRIEF = ("status", "version_before", "version_after", "failed_step", "backup_sha256")
PATCH_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]{1,95}$")
SEVERITIES = {"CRITICAL", "HIGH", "MEDIUM", "MODERATE", "LOW", "UNKNOWN"}


def _lines(text: str, parts: int, what: str, *, minimum: int) -> list[tuple[int, list[str]]]:
    out = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("|", parts - 1)]
        if len(fields) < minimum or not all(fields[:minimum]):
            raise forms.ValidationError(f"{what}, line {number}: write it as {_FORMATS[what]}.")
        out.append((number, fields + [""] * (parts - len(fields))))
    return out


_FORMATS = {
    "Updates": "component | package | target version",
    "Patches": "package | ID | severity | description",
    "SQL checks": "package | expected value | SELECT …",
    "Commands": "package | command",
}


def _read_only_select(sql: str) -> str:
    import pglast

    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        raise forms.ValidationError(f"SQL check does not parse: {exc}") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, pglast.ast.SelectStmt):
        raise forms.ValidationError("A SQL check is one SELECT statement.")
    stmt = statements[0].stmt
    if stmt.intoClause is not None or stmt.lockingClause:
        raise forms.ValidationError("A SQL check only reads (no INTO, no FOR UPDATE).")
    return sql.strip().rstrip(";")


class SecurityUpdateForm(forms.Form):
    updates = forms.CharField(
        label="Updates (one per line: component | package | target version)",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        help_text="Run in this order. Each component needs an update executor.",
    )
    patches = forms.CharField(
        label="Patches (one per line: package | ID | severity | description)",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=20_000,
        help_text="IDs such as CVE-2024-1234 or GHSA-xxxx-xxxx-xxxx.",
    )
    sql_checks = forms.CharField(
        label="SQL checks for database components (package | expected value | SELECT …)",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=20_000,
        help_text="Run read-only after the patch; the first column of the first row must "
        "equal the expected value.",
    )
    commands = forms.CharField(
        label="Commands for service components (package | command)",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=5000,
        help_text="Programs of the environment's bin/ or allow-listed scripts; exit 0 passes.",
    )
    timeout_minutes = forms.IntegerField(
        label="Minutes each update may take", min_value=1, max_value=240, initial=30
    )

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        specs = self._updates(cleaned.get("updates", ""))
        keyed = self._keys(specs)
        for number, (key, id_, severity, description) in _lines(
            cleaned.get("patches", ""), 4, "Patches", minimum=3
        ):
            spec = self._find(keyed, key, "Patches", number)
            if not PATCH_ID.match(id_):
                raise forms.ValidationError(f"Patches, line {number}: {id_!r} is not an ID.")
            if severity.upper() not in SEVERITIES:
                raise forms.ValidationError(
                    f"Patches, line {number}: severity is CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN."
                )
            label = "MEDIUM" if severity.upper() == "MODERATE" else severity.upper()
            artifact = self._artifacts[id(spec)]
            spec.patches.append(PatchSpec(id_, label, description[:500], artifact))
        for number, (key, expect, sql) in _lines(
            cleaned.get("sql_checks", ""), 3, "SQL checks", minimum=3
        ):
            spec = self._find(keyed, key, "SQL checks", number)
            self._check_kind(spec, "sql", number)
            spec.checks.append(CheckSpec("sql", sql=_read_only_select(sql), expect=expect))
        for number, (key, command) in _lines(cleaned.get("commands", ""), 2, "Commands", minimum=2):
            spec = self._find(keyed, key, "Commands", number)
            self._check_kind(spec, "command", number)
            try:
                argv = split_command(command)
                row = self._rows[id(spec)]
                executors.get(row.kind).check_command(row.component, row.config, argv)
            except ExecutorRefused as exc:
                raise forms.ValidationError(f"Commands, line {number}: {exc}") from None
            spec.checks.append(CheckSpec("command", argv=argv))
        cleaned["specs"] = specs
        return cleaned

    def _updates(self, text: str) -> list[UpdateSpec]:
        rows = _lines(text, 3, "Updates", minimum=3)
        if not rows:
            raise forms.ValidationError("List at least one update.")
        if len(rows) > MAX_UPDATES:
            raise forms.ValidationError(f"At most {MAX_UPDATES} updates in one procedure.")
        specs: list[UpdateSpec] = []
        self._artifacts: dict[int, str] = {}
        self._rows: dict[int, ComponentExecutor] = {}
        for number, (name, package, target) in rows:
            row = (
                ComponentExecutor.objects.select_related("component")
                .filter(component__name=name, is_active=True)
                .first()
            )
            if row is None:
                raise forms.ValidationError(
                    f"Updates, line {number}: unknown component {name!r} (no component of "
                    "that name has an update executor)."
                )
            try:
                executor = executors.get(row.kind)
                plan = executor.plan(row.component, row.config, package, target)
            except executors.UnknownExecutor:
                raise forms.ValidationError(
                    f"Updates, line {number}: {name} has an executor kind this portal lacks."
                ) from None
            except (ExecutorRefused, UpdateFailed) as exc:
                raise forms.ValidationError(
                    f"Updates, line {number}: {getattr(exc, 'message', exc)}"
                ) from None
            spec = UpdateSpec(
                component_id=row.component_id,
                component=row.component.name,
                executor=row.kind,
                ecosystem=plan.ecosystem,
                package=plan.package,
                current_version=plan.current_version,
                target_version=target,
                rollback=executor.rollback_text,
            )
            self._artifacts[id(spec)] = plan.artifact
            self._rows[id(spec)] = row
            specs.append(spec)
        return specs

    @staticmethod
    def _keys(specs: list[UpdateSpec]) -> dict[str, list[UpdateSpec]]:
        keyed: dict[str, list[UpdateSpec]] = {}
        for spec in specs:
            keyed.setdefault(spec.package.lower(), []).append(spec)
            keyed.setdefault(f"{spec.component}/{spec.package}".lower(), []).append(spec)
        return keyed

    @staticmethod
    def _find(keyed, key: str, what: str, number: int) -> UpdateSpec:
        found = keyed.get(key.lower(), [])
        if not found:
            raise forms.ValidationError(
                f"{what}, line {number}: {key!r} is not the package of one of the updates."
            )
        if len(found) > 1:
            raise forms.ValidationError(
                f"{what}, line {number}: {key!r} is in several updates; write component/package."
            )
        return found[0]

    @staticmethod
    def _check_kind(spec: UpdateSpec, kind: str, number: int) -> None:
        if kind not in executors.get(spec.executor).check_kinds():
            what = "SQL checks" if kind == "sql" else "Commands"
            raise forms.ValidationError(
                f"{what}, line {number}: {spec.component} ({spec.executor}) does not run "
                f"{'SQL checks' if kind == 'sql' else 'commands'}."
            )


@register
class SecurityUpdate(Procedure):
    kind = "security_update"
    label = "Security update"
    description = (
        "Per component, in order: back up, apply the patches, verify. A failing component "
        "is rolled back from its backup; the others still run."
    )
    form_class = SecurityUpdateForm
    has_rollback = True
    result_template = "maintenance/security/_results.html"

    def to_json(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        return {
            "updates": [spec.to_json() for spec in cleaned["specs"]],
            "timeout_minutes": cleaned["timeout_minutes"],
        }

    def summary(self, params: dict[str, Any]) -> str:
        parts = []
        for spec in updates_of(params):
            ids = ", ".join(p.id for p in spec.patches)
            parts.append(spec.label + (f" ({ids})" if ids else ""))
        return "Security update: " + "; ".join(parts)

    def max_minutes(self, params: dict[str, Any]) -> int:
        return int(params.get("timeout_minutes", 30)) * max(1, len(params.get("updates", [])))

    def prechecks(self, ctx: RunContext) -> list[StepSpec]:
        def in_impact(c: RunContext) -> dict[str, Any]:
            from changes.models import ChangeRequest

            named = set(
                ChangeRequest.objects.get(pk=c.change_id).components.values_list("pk", flat=True)
            )
            missing = [u.component for u in updates_of(c.params) if u.component_id not in named]
            if missing:
                raise StepFailed(
                    f"Not in the change's impact, so not approved for it: {', '.join(missing)}."
                )
            return {"components": [u.component for u in updates_of(c.params)]}

        return [StepSpec("Every component is named in the change's impact", in_impact)]

    def steps(self, ctx: RunContext) -> list[StepSpec]:
        from maintenance.security.apply import apply_update

        def make(position: int, update: UpdateSpec):
            def run(c: RunContext) -> dict[str, Any]:
                result = apply_update(update, position=position, ctx=c)
                c.state.setdefault("security_updates", []).append(result)
                # The step shows the outcome; the full record is the run's result.
                brief = {k: result[k] for k in BRIEF if result.get(k)}
                if result["status"] != UpdateResult.Status.SUCCESS:
                    what = "rolled back" if result["status"] == "ROLLED_BACK" else "failed"
                    raise StepFailed(f"{update.label}: {what} — {result['error']}", brief)
                return brief

            return run

        return [
            StepSpec(f"Update {u.label}", make(i, u), continue_on_failure=True)
            for i, u in enumerate(updates_of(ctx.params), start=1)
        ]

    def rollback(self, ctx: RunContext) -> list[StepSpec]:
        results = ctx.state.get("security_updates", [])
        # The run counts as rolled back only when nothing stayed changed: every update
        # failed and each was restored from its backup.
        if not results or any(r["status"] != UpdateResult.Status.ROLLED_BACK for r in results):
            return []

        def restored(c: RunContext) -> dict[str, Any]:
            return {"restored": [f"{r['component']}: {r['version_after']}" for r in results]}

        return [StepSpec("Every component was restored from its backup", restored)]
