from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from guardian.shortcuts import assign_perm

from api.models import ApiToken
from changes.models import (
    Approval,
    ApprovalGroupObjectPermission,
    ApprovalRule,
    ApprovalUserObjectPermission,
    ChangeRequest,
    CorrectiveAction,
    PostImplementationReview,
    RiskFactor,
    RiskRule,
    RiskThreshold,
    StandardTemplate,
    TemplateApproval,
    TemplateApprovalGroupObjectPermission,
    TemplateApprovalUserObjectPermission,
    TemplateVersion,
)
from compliance.models import (
    ChainVerification,
    ExportJob,
    RecoveryCode,
    RecoveryDevice,
    recovery_code_hash,
)
from dbops import crypto
from dbops.models import (
    ConfigurationChange,
    ConfigurationChangeSet,
    ConfigurationRule,
    DatabaseTarget,
    IndexSuggestion,
    QueryStatsSnapshot,
    StatementStat,
    TableStat,
    TuningAdjustment,
    TuningSample,
    TuningSession,
)
from maintenance.models import (
    BlackoutPeriod,
    CalendarFeedToken,
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceIssue,
    MaintenancePolicy,
    MaintenanceWindow,
    ProcedureRun,
    ScheduledChange,
    StepRun,
    WindowApproval,
    WindowApprovalGroupObjectPermission,
    WindowApprovalUserObjectPermission,
    WindowNotice,
    WindowType,
)
from maintenance.security import osv
from maintenance.security.models import (
    Advisory,
    AdvisoryPackage,
    ComponentBackup,
    ComponentExecutor,
    Exposure,
    InstalledPackage,
    UpdateResult,
    VersionChange,
)
from portal.audit import audit_record
from portal.models import (
    AuditEvent,
    Component,
    Notification,
    OutboxMessage,
    Service,
    Tenant,
    TenantGroupObjectPermission,
    TenantUserObjectPermission,
    UserPreference,
    WorkerHeartbeat,
)

PASSWORD = "correct horse battery staple"

# Project models with no factory here, each with the reason (tests/test_factories.py
# checks that every other concrete model of the project's apps has one).
NO_FACTORY: dict[str, str] = {}


def _in(**delta: float) -> datetime:
    return timezone.now() + timedelta(**delta)


def _next_number(model: type[models.Model], parent: str) -> factory.LazyAttribute:
    """The next free position (or number) among ``model``'s rows of the same ``parent``;
    1 for a parent not saved yet (``.build()``)."""

    def number(o: Any) -> int:
        owner = getattr(o, parent)
        return model.objects.filter(**{parent: owner}).count() + 1 if owner.pk else 1

    return factory.LazyAttribute(number)


def _object_permission(action: str) -> factory.LazyAttribute:
    """The content object's own ``<action>_<model>`` permission: guardian refuses to save
    an object permission whose permission belongs to another model."""

    def permission(o: Any) -> Permission:
        model = type(o.content_object)
        return Permission.objects.get(
            content_type=ContentType.objects.get_for_model(model),
            codename=f"{action}_{model._meta.model_name}",
        )

    return factory.LazyAttribute(permission)


def _grant_role(approval: Any) -> None:
    """The approval's role group may decide it, as when the policy opens a review."""
    assign_perm(approval.permission, Group.objects.get(name=approval.role), approval)


@functools.cache
def _password_hash() -> str:
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.Sequence(lambda n: f"Tenant {n}")
    contact_email = factory.LazyAttribute(lambda t: f"contact@{t.slug}.example")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Service {n}")


class ComponentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Component
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"component-{n}")
    service = factory.SubFactory(ServiceFactory)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@portal.example")
    # Hashing with Argon2 once per run instead of once per user keeps the suite fast.
    password = factory.LazyFunction(lambda: _password_hash())

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.set(Group.objects.filter(name__in=extracted))

    @factory.post_generation
    def tenants(self, create, extracted, **kwargs):
        if create and extracted:
            for tenant in extracted:
                assign_perm("portal.view_tenant", self, tenant)


class ChangeRequestFactory(factory.django.DjangoModelFactory):
    """A draft change (pass ``state=`` to start elsewhere: the FSM field is protected)."""

    class Meta:
        model = ChangeRequest
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Rotate TLS certificates #{n}")
    description = "Replace the expiring certificates on the edge."
    type = "SECURITY"
    priority = "MEDIUM"
    proposed_start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=10))
    window_minutes = 60
    blackout_exception = False
    implementation_plan = "Deploy the new bundle with the rollout tool."
    backout_plan = "Redeploy the previous bundle."
    verification_plan = "Check the served certificate's expiry date."
    requester = factory.SubFactory(UserFactory)

    @factory.post_generation
    def components(self, create, extracted, **kwargs):
        if create:
            self.components.set(extracted if extracted is not None else [ComponentFactory()])

    @factory.post_generation
    def services(self, create, extracted, **kwargs):
        if create and extracted:
            self.services.set(extracted)

    @factory.post_generation
    def tenants(self, create, extracted, **kwargs):
        if create:
            self.tenants.set(extracted if extracted is not None else [TenantFactory()])


class ApprovalFactory(factory.django.DjangoModelFactory):
    """One role's approval of a change; the role's group may decide it, as when the
    policy opens a review (``changes.services.review``)."""

    class Meta:
        model = Approval
        skip_postgeneration_save = True

    change = factory.SubFactory(ChangeRequestFactory)
    role = "SECURITY"
    phase = "PRE"

    @factory.post_generation
    def grant(self, create, extracted, **kwargs):
        if create:
            _grant_role(self)


RETROACTIVE_ROLES = ("SECURITY", "ENGINEERING", "OPERATIONS", "COMPLIANCE")


def urgent_change(*, state: str, retroactive=RETROACTIVE_ROLES, **kwargs):
    """An urgent change (Emergency Committee) in ``state`` with its retroactive reviews
    open, as the default policy requires them."""
    change = ChangeRequestFactory(state=state, category="URGENT", risk_level="CRITICAL", **kwargs)
    for role in retroactive:
        ApprovalFactory(change=change, role=role, phase="RETROACTIVE")
    return change


class GroupFactory(factory.django.DjangoModelFactory):
    """A group that is none of the role groups (those come from portal's migration)."""

    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group-{n}")


# --- portal ----------------------------------------------------------------------


class TenantUserObjectPermissionFactory(factory.django.DjangoModelFactory):
    """A user may see one tenant's data (what ``UserFactory(tenants=...)`` grants)."""

    class Meta:
        model = TenantUserObjectPermission

    content_object = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    permission = _object_permission("view")


class TenantGroupObjectPermissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TenantGroupObjectPermission

    content_object = factory.SubFactory(TenantFactory)
    group = factory.SubFactory(GroupFactory)
    permission = _object_permission("view")


class AuditEventFactory(factory.django.DjangoModelFactory):
    """An audit row appended the only way rows are: through ``portal.audit.audit_record``,
    which gives it the chain's next sequence and hash. Takes audit_record's arguments
    (``action``, ``user``, ``obj``, ``role``, ``outcome``, ``details``, ...)."""

    class Meta:
        model = AuditEvent

    action = "change.updated"
    user = factory.SubFactory(UserFactory)
    obj = factory.SubFactory(TenantFactory)
    details = factory.LazyFunction(lambda: {"source": "factory"})

    @classmethod
    def _create(cls, model_class: type[AuditEvent], *args: Any, **kwargs: Any) -> AuditEvent:
        return audit_record(**kwargs)

    @classmethod
    def _build(cls, model_class: type[AuditEvent], *args: Any, **kwargs: Any) -> AuditEvent:
        raise TypeError("An audit row exists only once appended to the chain: use create().")


class OutboxMessageFactory(factory.django.DjangoModelFactory):
    """A task asked for and not yet published (due at once)."""

    class Meta:
        model = OutboxMessage

    task_name = "portal.worker_ping"
    args = factory.Sequence(lambda n: [f"factory-{n}"])


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(UserFactory)
    subject = factory.Sequence(lambda n: f"CHG-{n:06d} awaits your approval")
    body = "A change needs your decision."
    url = "/changes/"


class WorkerHeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkerHeartbeat
        django_get_or_create = ("hostname",)

    hostname = factory.Sequence(lambda n: f"celery@worker-{n}.portal.example")
    last_seen = factory.LazyFunction(timezone.now)


class UserPreferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserPreference

    user = factory.SubFactory(UserFactory)
    timezone = "Europe/London"


# --- changes ---------------------------------------------------------------------


class ApprovalUserObjectPermissionFactory(factory.django.DjangoModelFactory):
    """One user may decide one approval (as a delegation grants)."""

    class Meta:
        model = ApprovalUserObjectPermission

    content_object = factory.SubFactory(ApprovalFactory)
    user = factory.SubFactory(UserFactory)
    permission = _object_permission("decide")


class ApprovalGroupObjectPermissionFactory(factory.django.DjangoModelFactory):
    """Another group may decide one approval (its role group already may)."""

    class Meta:
        model = ApprovalGroupObjectPermission

    content_object = factory.SubFactory(ApprovalFactory)
    group = factory.SubFactory(GroupFactory)
    permission = _object_permission("decide")


class PostImplementationReviewFactory(factory.django.DjangoModelFactory):
    """The PIR of a completed change."""

    class Meta:
        model = PostImplementationReview

    change = factory.SubFactory(ChangeRequestFactory, state="completed")
    outcome = PostImplementationReview.Outcome.SUCCESSFUL
    notes = "Went to plan; the served certificate expires next year."
    reviewed_by = factory.SelfAttribute("change.requester")


class CorrectiveActionFactory(factory.django.DjangoModelFactory):
    """Head of Security's incident note on a completed urgent change whose ratification
    was refused."""

    class Meta:
        model = CorrectiveAction

    change = factory.SubFactory(
        ChangeRequestFactory, state="completed", category="URGENT", risk_level="CRITICAL"
    )
    kind = CorrectiveAction.Kind.INCIDENT_NOTE
    note = "Incident INC-1042 opened; the change is reviewed at the next committee."
    recorded_by = factory.SubFactory(UserFactory, roles=["HEAD_OF_SECURITY"])
    recorded_role = "HEAD_OF_SECURITY"


class RiskRuleFactory(factory.django.DjangoModelFactory):
    """An extra bucket above the default ``conflicts`` rules (which stop at 2)."""

    class Meta:
        model = RiskRule

    factor = RiskFactor.CONFLICTS
    match = ""
    min_value = factory.Sequence(lambda n: Decimal(10 + n))
    points = 40
    explanation = factory.LazyAttribute(lambda r: f"Overlaps {r.min_value} or more changes.")


class RiskThresholdFactory(factory.django.DjangoModelFactory):
    """One of the two levels (unique): the default policy's row when it is there."""

    class Meta:
        model = RiskThreshold
        django_get_or_create = ("level",)

    level = "HIGH"
    min_score = 45


class ApprovalRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApprovalRule

    category = "STANDARD"
    change_type = "CONFIGURATION"
    condition = ApprovalRule.Condition.ALWAYS
    role = "OPERATIONS"
    phase = Approval.Phase.PRE
    due_hours = 72
    description = "Standard CONFIGURATION change: Operations approves."


class StandardTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StandardTemplate
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Rotate TLS certificates {n}")
    created_by = factory.SubFactory(UserFactory)


class TemplateVersionFactory(factory.django.DjangoModelFactory):
    """A version awaiting approval (pass ``status=``: the FSM field is protected)."""

    class Meta:
        model = TemplateVersion
        skip_postgeneration_save = True

    template = factory.SubFactory(StandardTemplateFactory)
    number = _next_number(TemplateVersion, "template")
    title_pattern = "Rotate TLS certificates on {component}"
    description = "Replace the expiring certificates on the edge."
    type = "SECURITY"
    implementation_plan = "Deploy the new bundle with the rollout tool."
    backout_plan = "Redeploy the previous bundle."
    verification_plan = "Check the served certificate's expiry date."
    max_window_minutes = 60
    risk_ceiling = 30
    proposed_by = factory.SelfAttribute("template.created_by")

    @factory.post_generation
    def components(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            self.components.set(extracted if extracted is not None else [ComponentFactory()])

    @factory.post_generation
    def tenants(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            self.tenants.set(extracted if extracted is not None else [TenantFactory()])


class TemplateApprovalFactory(factory.django.DjangoModelFactory):
    """One role's approval of a template version; the role's group may decide it."""

    class Meta:
        model = TemplateApproval
        skip_postgeneration_save = True

    template_version = factory.SubFactory(TemplateVersionFactory)
    role = "SECURITY"

    @factory.post_generation
    def grant(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            _grant_role(self)


class TemplateApprovalUserObjectPermissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TemplateApprovalUserObjectPermission

    content_object = factory.SubFactory(TemplateApprovalFactory)
    user = factory.SubFactory(UserFactory)
    permission = _object_permission("decide")


class TemplateApprovalGroupObjectPermissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TemplateApprovalGroupObjectPermission

    content_object = factory.SubFactory(TemplateApprovalFactory)
    group = factory.SubFactory(GroupFactory)
    permission = _object_permission("decide")


# --- maintenance: windows --------------------------------------------------------


class MaintenancePolicyFactory(factory.django.DjangoModelFactory):
    """The routine policy (one row per window type): the default one when it is there."""

    class Meta:
        model = MaintenancePolicy
        django_get_or_create = ("type",)

    type = WindowType.ROUTINE
    rrule = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=1;BYMINUTE=0;BYSECOND=0"
    default_duration_minutes = 240
    max_duration_minutes = 240
    notification_offsets = factory.LazyFunction(lambda: [1440, 60])


class BlackoutPeriodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BlackoutPeriod

    start_date = factory.LazyFunction(lambda: _in(days=30).date())
    end_date = factory.LazyAttribute(lambda b: b.start_date + timedelta(days=2))
    reason = "Open enrolment freeze"
    created_by = factory.SubFactory(UserFactory)


def _window_start(n: int) -> datetime:
    # Two weeks ahead, an hour apart, at :17 so that no window the routine policy
    # generates (on the hour) takes the same start (one routine window per start).
    hour = timezone.now().replace(minute=17, second=0, microsecond=0)
    return hour + timedelta(days=14, hours=n)


class MaintenanceWindowFactory(factory.django.DjangoModelFactory):
    """A planned routine window (pass ``status=``: the FSM field is protected)."""

    class Meta:
        model = MaintenanceWindow

    type = WindowType.ROUTINE
    start = factory.Sequence(_window_start)
    duration_minutes = 240
    notification_offsets = factory.LazyFunction(lambda: [1440, 60])
    title = factory.Sequence(lambda n: f"Sunday maintenance {n}")


class WindowApprovalFactory(factory.django.DjangoModelFactory):
    """The CTO's approval of an emergency window awaiting approval; the CTO group may
    decide it."""

    class Meta:
        model = WindowApproval
        skip_postgeneration_save = True

    window = factory.SubFactory(
        MaintenanceWindowFactory,
        type=WindowType.EMERGENCY,
        status=MaintenanceWindow.Status.PENDING_APPROVAL,
        duration_minutes=120,
        notification_offsets=factory.LazyFunction(lambda: [60]),
        reason="Patch an actively exploited vulnerability.",
    )
    role = "CTO"

    @factory.post_generation
    def grant(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            _grant_role(self)


class WindowApprovalUserObjectPermissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WindowApprovalUserObjectPermission

    content_object = factory.SubFactory(WindowApprovalFactory)
    user = factory.SubFactory(UserFactory)
    permission = _object_permission("decide")


class WindowApprovalGroupObjectPermissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WindowApprovalGroupObjectPermission

    content_object = factory.SubFactory(WindowApprovalFactory)
    group = factory.SubFactory(GroupFactory)
    permission = _object_permission("decide")


class CalendarFeedTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CalendarFeedToken

    user = factory.SubFactory(UserFactory)


class WindowNoticeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WindowNotice

    window = factory.SubFactory(MaintenanceWindowFactory)
    offset_minutes = 60
    recipient = factory.Sequence(lambda n: f"email:stakeholder{n}@portal.example")


# --- maintenance: execution ------------------------------------------------------


class ScheduledChangeFactory(factory.django.DjangoModelFactory):
    """A scheduled change placed last in a window, starting with it."""

    class Meta:
        model = ScheduledChange

    window = factory.SubFactory(MaintenanceWindowFactory)
    change = factory.SubFactory(ChangeRequestFactory, state="scheduled")
    position = _next_number(ScheduledChange, "window")
    planned_start = factory.SelfAttribute("window.start")
    planned_minutes = factory.SelfAttribute("change.window_minutes")
    scheduled_by = factory.SubFactory(UserFactory, roles=["OPERATIONS"])


class MaintenanceExecutionFactory(factory.django.DjangoModelFactory):
    """A window's execution, planned (pass ``status=``: the FSM field is protected)."""

    class Meta:
        model = MaintenanceExecution

    window = factory.SubFactory(MaintenanceWindowFactory)
    planned_at = factory.SelfAttribute("window.start")


class MaintenanceIssueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MaintenanceIssue

    execution = factory.SubFactory(MaintenanceExecutionFactory)
    kind = MaintenanceIssue.Kind.OTHER
    message = "The load balancer took longer than planned to drain."


class ChangeProcedureFactory(factory.django.DjangoModelFactory):
    """A manual checklist, the change's next procedure."""

    class Meta:
        model = ChangeProcedure

    change = factory.SubFactory(ChangeRequestFactory)
    position = _next_number(ChangeProcedure, "change")
    kind = "manual_checklist"
    params = factory.LazyFunction(
        lambda: {"steps": ["Drain node A", "Deploy the bundle"], "estimated_minutes": 15}
    )
    added_by = factory.SelfAttribute("change.requester")


class ProcedureRunFactory(factory.django.DjangoModelFactory):
    """A pending run of a procedure (pass ``status=``: the FSM field is protected). The
    execution is a new window's; pass ``execution=`` for the change's own."""

    class Meta:
        model = ProcedureRun

    procedure = factory.SubFactory(ChangeProcedureFactory)
    change = factory.SelfAttribute("procedure.change")
    execution = factory.SubFactory(MaintenanceExecutionFactory)
    idempotency_key = factory.Sequence(lambda n: f"factory-run-{n}")


class StepRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StepRun

    run = factory.SubFactory(ProcedureRunFactory)
    position = _next_number(StepRun, "run")
    kind = StepRun.Kind.STEP
    name = "Drain node A"


# --- maintenance: security updates -----------------------------------------------


class ComponentExecutorFactory(factory.django.DjangoModelFactory):
    """A component updated by allow-listed scripts (none named: discovery is not run)."""

    class Meta:
        model = ComponentExecutor
        skip_postgeneration_save = True

    component = factory.SubFactory(ComponentFactory)
    kind = "script"

    @factory.post_generation
    def tenants(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            self.tenants.set(extracted)


class InstalledPackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InstalledPackage

    executor = factory.SubFactory(ComponentExecutorFactory)
    ecosystem = "PyPI"
    name = factory.Sequence(lambda n: f"package-{n}")
    version = "1.0.0"
    first_seen_at = factory.LazyFunction(lambda: _in(days=-30))
    version_since = factory.SelfAttribute("first_seen_at")
    last_seen_at = factory.LazyFunction(timezone.now)


class VersionChangeFactory(factory.django.DjangoModelFactory):
    """Discovery saw a package move up a version."""

    class Meta:
        model = VersionChange

    executor = factory.SubFactory(ComponentExecutorFactory)
    ecosystem = "PyPI"
    name = factory.Sequence(lambda n: f"package-{n}")
    version_before = "1.0.0"
    version_after = "1.0.1"
    observed_at = factory.LazyFunction(timezone.now)
    source = VersionChange.Source.DISCOVERY


def _osv_record(advisory: Any) -> dict[str, Any]:
    return {
        "id": advisory.osv_id,
        "modified": advisory.modified.isoformat(),
        "summary": advisory.summary,
        "affected": [],
    }


class AdvisoryFactory(factory.django.DjangoModelFactory):
    """A HIGH advisory uploaded as OSV JSON (the raw record and its SHA-256 agree)."""

    class Meta:
        model = Advisory
        django_get_or_create = ("osv_id",)

    osv_id = factory.Sequence(lambda n: f"PYSEC-2099-{n}")
    summary = "Remote code execution in the request parser"
    severity = osv.HIGH
    severity_rank = factory.LazyAttribute(lambda a: osv.SEVERITY_RANK[a.severity])
    modified = factory.LazyFunction(lambda: _in(days=-1))
    published = factory.SelfAttribute("modified")
    source = Advisory.Source.UPLOAD
    source_name = factory.LazyAttribute(lambda a: f"{a.osv_id}.json")
    raw = factory.LazyAttribute(_osv_record)
    sha256 = factory.LazyAttribute(
        lambda a: hashlib.sha256(json.dumps(a.raw).encode("utf-8")).hexdigest()
    )
    imported_at = factory.LazyFunction(timezone.now)
    imported_by = factory.SubFactory(UserFactory, roles=["SECURITY"])


class AdvisoryPackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AdvisoryPackage

    advisory = factory.SubFactory(AdvisoryFactory)
    ecosystem = "PyPI"
    name = factory.Sequence(lambda n: f"package-{n}")
    ranges = factory.LazyFunction(
        lambda: [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0.1"}]}]
    )


class ExposureFactory(factory.django.DjangoModelFactory):
    """An open exposure: the advisory covers the installed version, fixed in 1.0.1."""

    class Meta:
        model = Exposure

    executor = factory.SubFactory(ComponentExecutorFactory)
    advisory = factory.SubFactory(AdvisoryFactory)
    ecosystem = "PyPI"
    package = factory.Sequence(lambda n: f"package-{n}")
    installed_version = "1.0.0"
    severity = factory.SelfAttribute("advisory.severity")
    severity_rank = factory.SelfAttribute("advisory.severity_rank")
    fixed_version = "1.0.1"
    exposed_since = factory.SelfAttribute("advisory.published")
    detected_at = factory.LazyFunction(timezone.now)


class ComponentBackupFactory(factory.django.DjangoModelFactory):
    """A backup's record whose file retention has already pruned."""

    class Meta:
        model = ComponentBackup

    component = factory.SubFactory(ComponentFactory)
    kind = "script"
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"backup {n}".encode()).hexdigest())
    size_bytes = 1024
    created_at = factory.LazyFunction(lambda: _in(days=-90))
    pruned_at = factory.LazyFunction(lambda: _in(days=-1))


class UpdateResultFactory(factory.django.DjangoModelFactory):
    """A component patched from 1.0.0 to 1.0.1 in a run."""

    class Meta:
        model = UpdateResult

    run = factory.SubFactory(ProcedureRunFactory)
    position = _next_number(UpdateResult, "run")
    component = factory.SubFactory(ComponentFactory)
    executor_kind = "script"
    ecosystem = "PyPI"
    package = factory.Sequence(lambda n: f"package-{n}")
    planned_from = "1.0.0"
    target_version = "1.0.1"
    version_before = "1.0.0"
    version_after = "1.0.1"
    status = UpdateResult.Status.SUCCESS
    started_at = factory.LazyFunction(lambda: _in(minutes=-5))
    finished_at = factory.LazyFunction(timezone.now)


# --- dbops -----------------------------------------------------------------------


class DatabaseTargetFactory(factory.django.DjangoModelFactory):
    """A watched database (never connected to here). Its password is stored encrypted,
    as ``set_password`` does: pass ``password=`` (or ``""`` for none)."""

    class Meta:
        model = DatabaseTarget
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    class Params:
        password = "factory-database-password"

    name = factory.Sequence(lambda n: f"claims-db-{n}")
    host = factory.LazyAttribute(lambda t: f"{t.name}.db.portal.example")
    database = "claims"
    user = "portal_maintenance"
    password_encrypted = factory.LazyAttribute(
        lambda t: crypto.encrypt(t.password) if t.password else ""
    )
    component = factory.SubFactory(
        ComponentFactory,
        name=factory.SelfAttribute("..name"),
        kind=Component.Kind.DATABASE,
    )

    @factory.post_generation
    def tenants(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            self.tenants.set(extracted)


class QueryStatsSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = QueryStatsSnapshot

    target = factory.SubFactory(DatabaseTargetFactory)
    taken_at = factory.LazyFunction(timezone.now)
    trigger = QueryStatsSnapshot.Trigger.MANUAL
    statements_available = True
    connections_used = 12


class StatementStatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StatementStat

    snapshot = factory.SubFactory(QueryStatsSnapshotFactory)
    queryid = factory.Sequence(lambda n: 7_000_000_000 + n)
    query = "SELECT * FROM claims WHERE status = $1"
    calls = 1200
    total_exec_time = 54_000.0
    mean_exec_time = 45.0
    rows = 36_000


class TableStatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TableStat

    snapshot = factory.SubFactory(QueryStatsSnapshotFactory)
    schema = "public"
    name = factory.Sequence(lambda n: f"claims_{n}")
    n_live_tup = 100_000
    n_dead_tup = 2_000
    seq_scan = 40
    seq_tup_read = 4_000_000
    idx_scan = 900
    total_bytes = 24 * 1024 * 1024
    last_vacuum = factory.LazyFunction(lambda: _in(days=-2))
    last_autovacuum = factory.LazyFunction(lambda: _in(hours=-6))
    last_analyze = factory.LazyFunction(lambda: _in(days=-2))
    last_autoanalyze = factory.LazyFunction(lambda: _in(hours=-6))


class IndexSuggestionFactory(factory.django.DjangoModelFactory):
    """A btree index on ``claims(status)`` proposed as a performance change, with the
    statement's baseline from a snapshot of the same target."""

    class Meta:
        model = IndexSuggestion

    target = factory.SubFactory(DatabaseTargetFactory)
    change = factory.SubFactory(
        ChangeRequestFactory,
        type="PERFORMANCE",
        title=factory.Sequence(lambda n: f"Index claims(status) #{n}"),
    )
    schema = "public"
    table = "claims"
    columns = factory.LazyFunction(lambda: ["status"])
    keys = factory.LazyFunction(lambda: [{"column": "status"}])
    index_name = factory.Sequence(lambda n: f"claims_status_idx_{n}")
    create_sql = factory.LazyAttribute(
        lambda s: f'CREATE INDEX CONCURRENTLY "{s.index_name}" ON "public"."claims" ("status")'
    )
    drop_sql = factory.LazyAttribute(
        lambda s: f'DROP INDEX CONCURRENTLY IF EXISTS "public"."{s.index_name}"'
    )
    queryid = factory.Sequence(lambda n: 8_000_000_000 + n)
    query = "SELECT * FROM claims WHERE status = $1"
    baseline = factory.SubFactory(
        QueryStatsSnapshotFactory,
        target=factory.SelfAttribute("..target"),
        trigger=QueryStatsSnapshot.Trigger.PROPOSAL,
    )
    mean_exec_time_before = 45.0
    calls_before = 1200
    proposed_by = factory.SelfAttribute("change.requester")


class ConfigurationRuleFactory(factory.django.DjangoModelFactory):
    """A range rule on ``work_mem``."""

    class Meta:
        model = ConfigurationRule
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"WORK_MEM_RANGE_{n}")
    rule_type = ConfigurationRule.Check.RANGE
    parameter = "work_mem"
    minimum = "1MB"
    maximum = "1GB"
    description = "work_mem between 1 MB and 1 GB."


class ConfigurationChangeSetFactory(factory.django.DjangoModelFactory):
    """A proposed set of a configuration change on a target."""

    class Meta:
        model = ConfigurationChangeSet

    target = factory.SubFactory(DatabaseTargetFactory)
    change = factory.SubFactory(
        ChangeRequestFactory,
        type="CONFIGURATION",
        title=factory.Sequence(lambda n: f"Raise work_mem #{n}"),
    )
    proposed_by = factory.SelfAttribute("change.requester")


# (parameter, value shown now, new value): the sets' entries in turn, so that a few on
# one set name different parameters (one entry per parameter and set).
_SETTINGS = (
    ("work_mem", "4MB", "64MB"),
    ("maintenance_work_mem", "64MB", "256MB"),
    ("effective_cache_size", "4GB", "12GB"),
    ("random_page_cost", "4", "1.1"),
)


class ConfigurationChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConfigurationChange

    class Params:
        setting = factory.Sequence(lambda n: _SETTINGS[n % len(_SETTINGS)])

    change_set = factory.SubFactory(ConfigurationChangeSetFactory)
    position = _next_number(ConfigurationChange, "change_set")
    parameter = factory.LazyAttribute(lambda c: c.setting[0])
    current_value = factory.LazyAttribute(lambda c: c.setting[1])
    new_value = factory.LazyAttribute(lambda c: c.setting[2])
    context = "user"


class TuningSessionFactory(factory.django.DjangoModelFactory):
    """A running tuning loop of a run on a target."""

    class Meta:
        model = TuningSession

    run = factory.SubFactory(ProcedureRunFactory)
    target = factory.SubFactory(DatabaseTargetFactory)
    purpose = TuningSession.Purpose.TUNING
    workload = factory.LazyFunction(lambda: {"kind": "pgbench", "clients": 8})


class TuningAdjustmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TuningAdjustment

    session = factory.SubFactory(TuningSessionFactory)
    position = _next_number(TuningAdjustment, "session")
    entries = factory.LazyFunction(lambda: [["work_mem", "64MB"]])


class TuningSampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TuningSample

    session = factory.SubFactory(TuningSessionFactory)
    phase = TuningSample.Phase.BASELINE
    seq = _next_number(TuningSample, "session")
    taken_at = factory.LazyFunction(timezone.now)
    seconds = 10.0
    tps = 850.0
    latency_ms = 9.4
    cache_hit_ratio = 0.99


# --- compliance ------------------------------------------------------------------


class ExportJobFactory(factory.django.DjangoModelFactory):
    """A queued CSV export of the audit trail, asked for by a Compliance user."""

    class Meta:
        model = ExportJob

    exporter = "audit"
    format = "csv"
    requested_by = factory.SubFactory(UserFactory, roles=["COMPLIANCE"])


class ChainVerificationFactory(factory.django.DjangoModelFactory):
    """A queued verification of the audit chain."""

    class Meta:
        model = ChainVerification

    requested_by = factory.SubFactory(UserFactory, roles=["COMPLIANCE"])


class RecoveryDeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RecoveryDevice

    user = factory.SubFactory(UserFactory)
    name = "Recovery codes"
    confirmed = True


class RecoveryCodeFactory(factory.django.DjangoModelFactory):
    """An unused code, stored as its hash: pass ``code=`` to know it."""

    class Meta:
        model = RecoveryCode

    class Params:
        code = factory.Sequence(lambda n: f"RCVR-{n:04d}-CODE")

    device = factory.SubFactory(RecoveryDeviceFactory)
    code_hash = factory.LazyAttribute(lambda c: recovery_code_hash(c.code))


# --- api -------------------------------------------------------------------------


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A read token for 30 days. Only its SHA-256 is stored, as ``api_token_create``
    stores it; the key is ``f"{display_id}_factory-key"`` unless ``key=`` is given."""

    class Meta:
        model = ApiToken

    class Params:
        key = factory.LazyAttribute(lambda t: f"{t.display_id}_factory-key")

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"deploy pipeline {n}")
    display_id = factory.Sequence(lambda n: f"cmp_f{n:07x}")
    key_hash = factory.LazyAttribute(lambda t: hashlib.sha256(t.key.encode("utf-8")).hexdigest())
    scopes = factory.LazyFunction(lambda: ["read"])
    expires_at = factory.LazyFunction(lambda: _in(days=30))
