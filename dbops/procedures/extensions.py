"""UPGRADE: ALTER EXTENSION … UPDATE [TO version], with the versions before and after."""

from __future__ import annotations

from typing import Any

import psycopg
from django import forms
from psycopg import sql

from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget
from dbops.procedures.checks import (
    check_connections,
    check_target_lock,
)
from dbops.procedures.common import (
    TargetForm,
    TargetQueue,
    close_conn,
    fetch,
    notify_stakeholders,
    open_conn,
)
from dbops.security import upgrade as extension_backup
from maintenance.procedures import register
from maintenance.procedures.base import Figure, Procedure, RunContext, StepFailed, StepSpec


class UpgradeForm(TargetForm):
    extension = forms.CharField(label="Extension", max_length=63)
    version = forms.CharField(
        label="To version (empty: the default)", required=False, max_length=63
    )

    def clean(self):
        cleaned = super().clean()
        target, name = cleaned.get("target"), cleaned.get("extension")
        if not target or not name:
            return cleaned
        try:
            with connect(target) as conn:
                rows = {r["name"]: r for r in fetch(conn, "proc_extensions")}
        except TargetUnavailable as exc:
            raise forms.ValidationError(exc.message) from None
        if name not in rows:
            raise forms.ValidationError(f"{name!r} is not installed on {target.name}.")
        version = cleaned.get("version") or ""
        if version and version not in rows[name]["available"]:
            raise forms.ValidationError(
                f"{name} has no version {version!r}; available: "
                f"{', '.join(rows[name]['available'])}."
            )
        return cleaned


def installed_version(ctx: RunContext) -> tuple[str | None, str | None]:
    rows = fetch(open_conn(ctx), "proc_extension_version", {"name": ctx.params["extension"]})
    if not rows:
        return None, None
    return rows[0]["installed"], rows[0]["default_version"]


@register
class Upgrade(TargetQueue, Procedure):
    kind = "db_upgrade"
    label = "UPGRADE (extension)"
    description = (
        "pg_dump backup, ALTER EXTENSION … UPDATE [TO version], the versions before/after; "
        "a failure restores the dump."
    )
    form_class = UpgradeForm
    default_impact = "MEDIUM"
    has_rollback = True

    def to_json(self, cleaned):
        return {
            "target": cleaned["target"].pk,
            "extension": cleaned["extension"],
            "version": cleaned.get("version") or "",
        }

    def summary(self, params):
        to = f" to {params['version']}" if params.get("version") else ""
        return f"ALTER EXTENSION {params.get('extension')} UPDATE{to}"

    def details(self, params):
        target = DatabaseTarget.objects.filter(pk=params.get("target")).first()
        return [
            ("Target", target.name if target else "(missing)"),
            ("Extension", params.get("extension", "")),
            ("To version", params.get("version") or "the default"),
        ]

    def precheck_names(self, params):
        return ["Per-target lock", "CONNECTIONS"]

    def max_minutes(self, params):
        return 10

    def prechecks(self, ctx):
        return [
            StepSpec("Per-target lock", check_target_lock),
            StepSpec("CONNECTIONS", check_connections),
        ]

    def steps(self, ctx):
        def update(c: RunContext) -> dict[str, Any]:
            before, _ = installed_version(c)
            if before is None:
                raise StepFailed(f"{c.params['extension']} is not installed.")
            c.state["version_before"] = before
            statement = sql.SQL("ALTER EXTENSION {} UPDATE").format(
                sql.Identifier(c.params["extension"])
            )
            if c.params.get("version"):
                statement = sql.SQL("{} TO {}").format(statement, sql.Literal(c.params["version"]))
            c.log(statement.as_string(open_conn(c)) + "\n")
            try:
                open_conn(c).execute(statement)
            except psycopg.Error as exc:
                raise StepFailed(f"ALTER EXTENSION failed: {query_failure(exc)}") from None
            c.state["version_after"], _ = installed_version(c)
            return {"version_before": before, "version_after": c.state["version_after"]}

        return [
            StepSpec("Notify stakeholders", notify_stakeholders),
            StepSpec("Back up the database (pg_dump)", extension_backup.backup_step),
            StepSpec(f"Update {ctx.params['extension']}", update),
        ]

    def rollback(self, ctx):
        # The security-update executor's rollback: restore the dump taken before the update.
        return extension_backup.rollback_steps(ctx)

    def verify(self, ctx):
        def check(c: RunContext) -> dict[str, Any]:
            now, default = installed_version(c)
            wanted = c.params.get("version") or default
            if now != wanted:
                raise StepFailed(f"{c.params['extension']} is at {now}, expected {wanted}.")
            return {"version_before": c.state.get("version_before"), "version_after": now}

        return [StepSpec("Version is the one asked for", check)]

    def figures(self, result):
        if not result.get("version_after"):
            return []
        return [
            Figure(
                "Verification: extension version",
                ["Before", "After"],
                [[result.get("version_before"), result.get("version_after")]],
            )
        ]

    def cleanup(self, ctx):
        close_conn(ctx)
        extension_backup.cleanup(ctx)
