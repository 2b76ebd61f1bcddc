"""Load the scale of issue 13 into a scratch database with COPY.

    .venv/bin/python -m tests.bench.load --database-url postgres://…/scratch --changes 100000

The database must be migrated and empty of changes (the page benchmark creates one in
its own throwaway cluster; never point this at a database you care about). It prints
one JSON object: the row counts and what the benchmark needs (users, a change to open,
a feed token, an audit cursor deep in the trail).

What it creates, for ``--changes N`` (the issue's volume at N = 100,000):

- 3 tenants, 30 components; 100 requesters spread over the tenants and 5 users per
  approver role seeing every tenant, plus the measured users ``requester`` (one
  tenant), ``security``, ``operator`` and ``compliance``; tenant visibility as guardian
  user permissions, as the product grants it.
- N changes: 72 % scheduled into windows (2,000 × N / 100,000 windows, one a day, 36
  slots each, the last 200 × N / 100,000 in the future), the rest drafts, in review,
  approved, rejected and cancelled; one to three tenants and one or two components each.
- About 2.91 approvals per change (291,000 at N = 100,000) following the default policy's
  shape (standard: the type's role, Compliance for several tenants; emergency: Security,
  Engineering, Operations; urgent: CTO and Head of Security, then the retroactive four),
  each with the guardian group permission the review service grants, decided by the
  role's approvers where the change has moved on; a few hundred active delegations with
  the delegate's user permission.
- 10 × N audit events (1,000,000 at N = 100,000) forming a valid chain, each hashed with
  ``portal.audit.compute_hash``, the product's own function.

Rows are built in Python from a fixed seed and written with ``COPY … FROM STDIN``;
sequences are moved past the ids used.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

SEED = 13
SLOTS_PER_WINDOW = 36
EVENTS_PER_CHANGE = 10
ROLE_POOL = 5
REQUESTERS = 100
DELEGATIONS_PER_100K = 300


def _setup(database_url: str | None) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


@dataclass
class Counts:
    rows: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n


class Copier:
    """COPY rows into tables through the Django connection's psycopg connection."""

    def __init__(self, counts: Counts) -> None:
        from django.db import connection

        connection.ensure_connection()
        self.conn = connection.connection
        self.counts = counts

    def copy(self, table: str, columns: list[str], rows) -> int:
        from psycopg import sql

        # Columns added since this loader was written get their model's default.
        extra_columns, extra_values = self._defaults(table, columns)
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, [*columns, *extra_columns])),
        )
        n = 0
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row((*row, *extra_values) if extra_values else row)
                n += 1
        self.counts.add(table, n)
        return n

    @staticmethod
    def _defaults(table: str, columns: list[str]) -> tuple[list[str], list[Any]]:
        from django.apps import apps
        from django.db import models
        from psycopg.types.json import Jsonb

        model = next((m for m in apps.get_models() if m._meta.db_table == table), None)
        if model is None:
            return [], []
        names, values = [], []
        for f in model._meta.concrete_fields:
            if f.column in columns or getattr(f, "db_returning", False):
                continue  # given, or the database numbers it
            if f.has_default():
                value = f.get_default()
                value = Jsonb(value) if isinstance(f, models.JSONField) else value
            elif f.null:
                value = None
            else:
                raise SystemExit(f"{table}.{f.column} has no default: teach the loader about it")
            names.append(f.column)
            values.append(value)
        return names, values

    def bump_sequence(self, table: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                "GREATEST((SELECT max(id) FROM " + table + "), 1))",
                [table],
            )


# --- the plan: what each change is ------------------------------------------------------


ROLE_FOR_TYPE = {
    "SECURITY": "SECURITY",
    "FEATURE": "ENGINEERING",
    "PERFORMANCE": "ENGINEERING",
    "CONFIGURATION": "OPERATIONS",
}
APPROVER_ROLES = ["SECURITY", "ENGINEERING", "OPERATIONS", "COMPLIANCE", "CTO", "HEAD_OF_SECURITY"]
EXECUTED = ("completed", "failed", "rolled_back")


@dataclass
class ChangePlan:
    id: int = 0
    created_at: datetime | None = None
    state: str = "draft"
    category: str = ""
    type: str = "SECURITY"
    tenants: list[int] = field(default_factory=list)
    components: list[int] = field(default_factory=list)
    requester: int = 0
    window: int | None = None  # window index
    position: int = 0
    proposed_start: datetime | None = None


def _roles_for(plan: ChangePlan) -> list[tuple[str, str]]:
    multi = len(plan.tenants) > 1
    if plan.category == "STANDARD":
        roles = [(ROLE_FOR_TYPE[plan.type], "PRE")]
        if multi:
            roles.append(("COMPLIANCE", "PRE"))
    elif plan.category == "EMERGENCY":
        roles = [("SECURITY", "PRE"), ("ENGINEERING", "PRE"), ("OPERATIONS", "PRE")]
        if multi:
            roles.append(("COMPLIANCE", "PRE"))
    else:
        roles = [("CTO", "PRE"), ("HEAD_OF_SECURITY", "PRE")] + [
            (role, "RETROACTIVE")
            for role in ("SECURITY", "ENGINEERING", "OPERATIONS", "COMPLIANCE")
        ]
    return roles


def plan_changes(n: int, *, now: datetime, rng: random.Random, tenants: list[int],
                 components: list[int], requesters: dict[int, int],
                 windows: int) -> tuple[list[ChangePlan], list[datetime]]:  # fmt: skip
    """Every change's state, category, tenants and slot; ids follow creation time."""
    today = now.replace(hour=1, minute=0, second=0, microsecond=0)
    future = max(1, round(windows * 0.1))
    window_starts = [today + timedelta(days=d) for d in range(-(windows - future), future)]
    plans: list[ChangePlan] = []
    for w, start in enumerate(window_starts):
        for pos in range(1, SLOTS_PER_WINDOW + 1):
            if start > now:
                state = "scheduled"
            else:
                state = rng.choices(
                    ["closed", "completed", "failed", "rolled_back"], [85, 8, 4, 3]
                )[0]
            plans.append(
                ChangePlan(
                    state=state,
                    window=w,
                    position=pos,
                    created_at=start - timedelta(days=rng.uniform(7, 40)),
                    proposed_start=start + timedelta(minutes=6 * (pos - 1)),
                )
            )
    rest = n - len(plans)
    if rest < 0:
        raise SystemExit(f"{n} changes are too few for {windows} windows of 36 slots")
    weights = {"draft": 3, "in_review": 8, "approved": 3, "rejected": 6, "cancelled": 8}
    for state in rng.choices(list(weights), list(weights.values()), k=rest):
        created = now - timedelta(
            days=rng.uniform(0, 60) if state != "draft" else rng.uniform(0, 30)
        )
        plans.append(
            ChangePlan(
                state=state,
                created_at=created,
                proposed_start=now + timedelta(days=rng.uniform(1, 90)),
            )
        )
    requester_ids = list(requesters)
    for plan in plans:
        plan.type = rng.choice(list(ROLE_FOR_TYPE))
        plan.requester = rng.choice(requester_ids)
        home = requesters[plan.requester]
        others = [t for t in tenants if t != home]
        extra = rng.choices([0, 1, 2], [50, 35, 15])[0]
        plan.tenants = [home, *rng.sample(others, extra)]
        plan.components = rng.sample(components, rng.choice([1, 1, 2]))
        if plan.state != "draft":
            plan.category = rng.choices(["STANDARD", "EMERGENCY", "URGENT"], [50, 30, 20])[0]
    plans.sort(key=lambda p: p.created_at)
    for i, plan in enumerate(plans, start=1):
        plan.id = i
    return plans, window_starts


# --- the load ----------------------------------------------------------------------------


def load(*, changes: int, windows: int | None = None, events_per_change: int = EVENTS_PER_CHANGE,
         seed: int = SEED) -> dict[str, Any]:  # fmt: skip
    from django.apps import apps
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, Permission
    from django.db import connection, transaction
    from psycopg.types.json import Jsonb

    from changes.models import ChangeRequest
    from portal import defaults as portal_defaults
    from portal.audit import GENESIS_HASH, compute_hash
    from portal.models import AuditEvent

    if ChangeRequest.objects.exists() or AuditEvent.objects.exists():
        raise SystemExit("the database already holds changes or audit events; use an empty one")
    # Migrations create the role groups; a flushed database gets them back here.
    if portal_defaults.roles_missing(apps):
        portal_defaults.seed_roles(apps)

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    windows = windows if windows is not None else max(1, round(changes * 0.02))
    counts = Counts()
    copier = Copier(counts)
    started = time.monotonic()
    groups = {g.name: g.pk for g in Group.objects.all()}
    view_tenant = Permission.objects.get(codename="view_tenant", content_type__app_label="portal")
    decide = Permission.objects.get(codename="decide_approval", content_type__app_label="changes")
    password = make_password("bench-" + uuid.uuid4().hex)

    with transaction.atomic():
        # Catalog.
        tenant_ids = [1, 2, 3]
        copier.copy(
            "portal_tenant",
            ["id", "slug", "name", "contact_email"],
            [(t, f"tenant-{t}", f"Tenant {t}", "") for t in tenant_ids],
        )
        component_ids = list(range(1, 31))
        copier.copy(
            "portal_component",
            ["id", "name", "kind", "service_id", "description"],
            [(c, f"component-{c:02d}", "APPLICATION", None, "") for c in component_ids],
        )

        # Users: requesters over the tenants, approvers per role, the measured ones.
        users: list[tuple[int, str, list[str], list[int]]] = []
        requesters: dict[int, int] = {}
        uid = 0
        for n in range(REQUESTERS):
            uid += 1
            home = tenant_ids[n % 3]
            users.append((uid, f"req{n:03d}", ["REQUESTER"], [home]))
            requesters[uid] = home
        pools: dict[str, list[int]] = {}
        for role in [*APPROVER_ROLES, "OPERATIONS_RUN"]:
            real = "OPERATIONS" if role == "OPERATIONS_RUN" else role
            for n in range(ROLE_POOL if role != "OPERATIONS_RUN" else 0):
                uid += 1
                users.append((uid, f"{real.lower()}{n}", [real], tenant_ids))
                pools.setdefault(real, []).append(uid)
        measured = {}
        for name, roles, visible in (
            ("requester", ["REQUESTER"], [tenant_ids[0]]),
            ("security", ["SECURITY"], tenant_ids),
            ("operator", ["OPERATIONS"], tenant_ids),
            ("compliance", ["COMPLIANCE"], tenant_ids),
        ):
            uid += 1
            users.append((uid, name, roles, visible))
            measured[name] = uid
        requesters[measured["requester"]] = tenant_ids[0]
        # The measured approvers decide like the pool they join.
        pools["SECURITY"].append(measured["security"])
        copier.copy(
            "auth_user",
            [
                "id",
                "password",
                "last_login",
                "is_superuser",
                "username",
                "first_name",
                "last_name",
                "email",
                "is_staff",
                "is_active",
                "date_joined",
            ],
            [
                (u, password, None, False, name, "", "", f"{name}@bench.example", False, True, now)
                for u, name, _, _ in users
            ],
        )
        copier.copy(
            "auth_user_groups",
            ["user_id", "group_id"],
            [(u, groups[role]) for u, _, roles, _ in users for role in roles],
        )
        copier.copy(
            "portal_tenantuserobjectpermission",
            ["permission_id", "user_id", "content_object_id"],
            [(view_tenant.pk, u, t) for u, _, _, visible in users for t in visible],
        )

        # Changes, their tenants and components.
        plans, window_starts = plan_changes(
            changes,
            now=now,
            rng=rng,
            tenants=tenant_ids,
            components=component_ids,
            requesters=requesters,
            windows=windows,
        )
        factors = Jsonb(
            [{"key": "priority", "label": "Priority", "value": "MEDIUM", "points": 10, "why": ""}]
        )
        operator = pools["OPERATIONS"][0]

        def change_rows():
            for p in plans:
                submitted = p.created_at + timedelta(hours=1) if p.state != "draft" else None
                executed = (
                    p.proposed_start if p.state in (*EXECUTED, "closed") else None
                )  # fmt: skip
                decided = submitted + timedelta(hours=3) if submitted and p.state not in (
                    "in_review", "cancelled") else None  # fmt: skip
                risk = {"STANDARD": "LOW", "EMERGENCY": "HIGH", "URGENT": "CRITICAL"}.get(
                    p.category, ""
                )
                yield (
                    p.id,
                    f"{p.type.title()} change {p.id}: rotate keys on "
                    f"component-{p.components[0]:02d}",
                    "Bench change.",
                    p.type,
                    rng.choice(["HIGH", "MEDIUM", "LOW"]),
                    p.proposed_start,
                    60,
                    False,
                    "Apply.",
                    "Revert.",
                    "Check.",
                    risk,
                    {"LOW": 10, "HIGH": 45, "CRITICAL": 80}.get(risk),
                    factors,
                    submitted,
                    p.category,
                    p.state,
                    1,
                    "SUCCESSFUL" if p.state in ("completed", "closed") else "",
                    0,
                    "",
                    False,
                    p.requester,
                    operator if executed else None,
                    operator if executed else None,
                    operator if executed else None,
                    None,
                    p.created_at,
                    p.created_at + timedelta(hours=5),
                    submitted,
                    decided,
                    executed,
                    executed + timedelta(days=3) if executed and p.state == "closed" else None,
                )

        copier.copy(
            "changes_changerequest",
            ["id", "title", "description", "type", "priority", "proposed_start",
             "window_minutes", "blackout_exception", "implementation_plan", "backout_plan",
             "verification_plan", "risk_level", "risk_score", "risk_factors",
             "risk_assessed_at", "category", "state", "version", "outcome", "procedure_count",
             "procedure_impact", "requires_downtime", "requester_id", "started_by_id",
             "implemented_by_id", "verified_by_id", "copied_from_id", "created_at",
             "updated_at", "submitted_at", "decided_at", "executed_at", "closed_at"],
            change_rows(),
        )  # fmt: skip
        copier.copy(
            "changes_changerequest_tenants",
            ["changerequest_id", "tenant_id"],
            ((p.id, t) for p in plans for t in p.tenants),
        )
        copier.copy(
            "changes_changerequest_components",
            ["changerequest_id", "component_id"],
            ((p.id, c) for p in plans for c in p.components),
        )

        # Approvals with their guardian permissions, decisions and delegations.
        approval_rows = []
        delegations = round(DELEGATIONS_PER_100K * changes / 100_000)
        aid = 0
        due_hours = {"STANDARD": 48, "EMERGENCY": 4, "URGENT": 1}
        pending_pre: list[int] = []
        for p in plans:
            if p.state == "draft":
                continue
            submitted = p.created_at + timedelta(hours=1)
            rejected_one = p.state == "rejected"
            for role, phase in _roles_for(p):
                aid += 1
                status, decider, decided_at = "PENDING", None, None
                if phase == "PRE":
                    moved_on = p.state not in ("in_review", "rejected", "cancelled")
                    if moved_on or rng.random() < 0.4:
                        status = "APPROVED"
                    if rejected_one:
                        status, rejected_one = "REJECTED", False
                    due = submitted + timedelta(hours=due_hours[p.category])
                else:
                    due = None
                    if p.state == "closed" or (p.state in EXECUTED and rng.random() < 0.5):
                        status = "APPROVED"
                    if p.state in EXECUTED:
                        due = p.proposed_start + timedelta(hours=72)
                if status != "PENDING":
                    decider = rng.choice(pools[role])
                    decided_at = submitted + timedelta(hours=2)
                elif phase == "PRE" and p.state == "in_review":
                    pending_pre.append(len(approval_rows))
                approval_rows.append(
                    [aid, role, status, "Looks right." if decider else "", decider, decided_at,
                     due, None, None, None, None, None, 1, submitted, p.id, phase, None,
                     f"Default policy: {role.title()} approves {p.category.lower()} changes"]
                )  # fmt: skip
        delegated_users = []
        for index in rng.sample(pending_pre, min(delegations, len(pending_pre))):
            row = approval_rows[index]
            role = row[1]
            # A third of them go to the measured Security user, so its queue holds some.
            others = [u for r, us in pools.items() if r != role for u in us]
            to_user = measured["security"] if rng.random() < 0.33 else rng.choice(others)
            by = pools[role][0]
            row[7], row[8], row[9], row[10] = to_user, by, now, now + timedelta(days=7)
            delegated_users.append((decide.pk, to_user, row[0]))
        copier.copy(
            "changes_approval",
            ["id", "role", "status", "comments", "decided_by_id", "decided_at", "due_at",
             "delegated_to_id", "delegated_by_id", "delegated_at", "delegation_expires_at",
             "escalated_at", "version", "created_at", "change_id", "phase", "rule_id",
             "required_because"],
            approval_rows,
        )  # fmt: skip
        copier.copy(
            "changes_approvalgroupobjectpermission",
            ["permission_id", "group_id", "content_object_id"],
            ((decide.pk, groups[row[1]], row[0]) for row in approval_rows),
        )
        copier.copy(
            "changes_approvaluserobjectpermission",
            ["permission_id", "user_id", "content_object_id"],
            delegated_users,
        )
        del approval_rows

        # Windows and their slots.
        def window_rows():
            for w, start in enumerate(window_starts, start=1):
                routine = start.weekday() == 6
                past = start + timedelta(minutes=240) < now
                yield (
                    w,
                    "ROUTINE" if routine else "EMERGENCY",
                    start,
                    240,
                    "UTC",
                    Jsonb([1440, 60]),
                    "COMPLETED" if past else "PLANNED",
                    "" if routine else f"Emergency window {w}",
                    "" if routine else "Bench",
                    "CONTINUE",
                    Jsonb([]),
                    Jsonb([]),
                    None,
                    None,
                    start - timedelta(days=30),
                )

        copier.copy(
            "maintenance_maintenancewindow",
            ["id", "type", "start", "duration_minutes", "timezone", "notification_offsets",
             "status", "title", "reason", "cutoff_behavior", "stakeholder_roles",
             "stakeholder_emails", "requested_by_id", "for_change_id", "created_at"],
            window_rows(),
        )  # fmt: skip
        copier.copy(
            "maintenance_scheduledchange",
            ["window_id", "change_id", "position", "planned_start", "planned_minutes",
             "scheduled_by_id", "scheduled_at"],
            (
                (p.window + 1, p.id, p.position, p.proposed_start, 6, operator,
                 p.created_at + timedelta(days=2))
                for p in plans
                if p.window is not None
            ),
        )  # fmt: skip

        # The audit chain: EVENTS_PER_CHANGE events per change, in order, hashed as the
        # product hashes them.
        names = {u: name for u, name, _, _ in users}
        actions = [
            ("change.created", "REQUESTER"), ("change.submitted", "REQUESTER"),
            ("change.review_started", ""), ("approval.approved", "SECURITY"),
            ("approval.approved", "COMPLIANCE"), ("change.approved", ""),
            ("change.scheduled", "OPERATIONS"), ("change.started", "OPERATIONS"),
            ("change.completed", "OPERATIONS"), ("change.closed", "REQUESTER"),
        ]  # fmt: skip

        class Event:
            __slots__ = (
                "acting_for_id", "action", "created_at", "details", "ip_address", "object_id",
                "object_type", "outcome", "request_id", "role", "sequence", "user_id", "username",
            )  # fmt: skip

        def audit_rows():
            prev = GENESIS_HASH
            sequence = 0
            event = Event()
            for p in plans:
                for i in range(events_per_change):
                    sequence += 1
                    action, role = actions[i % len(actions)]
                    user = p.requester if role in ("REQUESTER", "") else operator
                    event.sequence = sequence
                    event.created_at = p.created_at + timedelta(seconds=i)
                    event.user_id = user
                    event.username = names[user]
                    event.role = role
                    event.acting_for_id = None
                    event.ip_address = f"10.{p.id % 250}.{i}.{sequence % 250 + 1}"
                    event.request_id = f"{sequence:032x}"
                    event.action = action
                    event.object_type = "changes.changerequest"
                    event.object_id = f"CHG-{p.id:06d}"
                    event.outcome = "SUCCESS" if sequence % 97 else "DENIED"
                    event.details = (
                        {"from": "draft", "to": "submitted", "note": "Prüfung ✓"}
                        if i % 2
                        else {"role": role or "SYSTEM", "version": i + 1}
                    )
                    digest = compute_hash(prev, event)
                    yield (
                        sequence, sequence, event.created_at, user, event.username, role, None,
                        event.ip_address, event.request_id, action, event.object_type,
                        event.object_id, event.outcome, Jsonb(event.details), prev, digest,
                    )  # fmt: skip
                    prev = digest

        copier.copy(
            "portal_auditevent",
            ["id", "sequence", "created_at", "user_id", "username", "role", "acting_for_id",
             "ip_address", "request_id", "action", "object_type", "object_id", "outcome",
             "details", "prev_hash", "hash"],
            audit_rows(),
        )  # fmt: skip

        for table in (
            "portal_tenant", "portal_component", "auth_user", "auth_user_groups",
            "portal_tenantuserobjectpermission", "changes_changerequest",
            "changes_changerequest_tenants", "changes_changerequest_components",
            "changes_approval", "changes_approvalgroupobjectpermission",
            "changes_approvaluserobjectpermission", "maintenance_maintenancewindow",
            "maintenance_scheduledchange", "portal_auditevent",
        ):  # fmt: skip
            copier.bump_sequence(table)

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    loaded = time.monotonic() - started

    from maintenance.models import CalendarFeedToken

    token = CalendarFeedToken.objects.create(user_id=measured["operator"])
    visible_closed = next(
        p for p in reversed(plans) if p.state == "closed" and tenant_ids[0] in p.tenants
    )
    total_events = len(plans) * events_per_change
    return {
        "changes": len(plans),
        "windows": len(window_starts),
        "rows": counts.rows,
        "users": measured,
        "detail_change": visible_closed.id,
        "feed_token": token.token,
        "audit_events": total_events,
        "audit_middle": total_events // 2,
        "load_seconds": round(loaded, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--windows", type=int, default=None)
    args = parser.parse_args(argv)
    _setup(args.database_url)
    print(json.dumps(load(changes=args.changes, windows=args.windows)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
