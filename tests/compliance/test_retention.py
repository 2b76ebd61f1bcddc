"""Six-year retention: deletes refused (and audited) however asked; the archive path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.utils import timezone

from changes.models import Approval, ChangeRequest, PostImplementationReview
from compliance.archive import record_delete
from compliance.retention import RetentionRefused
from maintenance.models import MaintenanceExecution, ProcedureRun, StepRun
from portal.audit import audit_record
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def _denied() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="retention.delete_refused", outcome="DENIED"))


@pytest.mark.parametrize(
    "target",
    ["change", "approval", "run", "step", "execution"],
)
def test_deleting_a_record_inside_six_years_is_refused_and_audited(ran_change, superuser, target):
    obj = {
        "change": lambda: ran_change,
        "approval": lambda: Approval.objects.get(change=ran_change),
        "run": lambda: ProcedureRun.objects.get(change=ran_change),
        "step": lambda: StepRun.objects.get(run__change=ran_change),
        "execution": lambda: MaintenanceExecution.objects.get(runs__change=ran_change),
    }[target]()

    with pytest.raises(RetentionRefused, match="cannot be deleted before"):
        record_delete(obj=obj, by=superuser)

    assert type(obj).objects.filter(pk=obj.pk).exists()
    [event] = _denied()
    assert event.username == "root"
    assert event.details["model"] == obj._meta.label_lower


def test_a_queryset_delete_or_a_cascade_is_refused_too(ran_change, make_change):
    reviewed = make_change(title="No runs, one review")
    PostImplementationReview.objects.create(
        change=reviewed, outcome="SUCCESSFUL", notes="ok", reviewed_by=reviewed.requester
    )
    old = timezone.now() - timedelta(days=365 * 7)
    ChangeRequest.objects.filter(pk=reviewed.pk).update(created_at=old, updated_at=old)

    with pytest.raises(RetentionRefused), transaction.atomic():
        Approval.objects.filter(change=ran_change).delete()
    with pytest.raises(RetentionRefused, match="post implementation review"):
        with transaction.atomic():  # the change is old, the review it cascades to is not
            ChangeRequest.objects.get(pk=reviewed.pk).delete()

    assert Approval.objects.filter(change=ran_change).count() == 1
    assert ChangeRequest.objects.filter(pk=reviewed.pk).exists()


def test_an_audit_event_is_never_deleted(superuser):
    event = audit_record(action="test.kept")

    with pytest.raises(RetentionRefused):
        record_delete(obj=event, by=superuser)
    with pytest.raises(DatabaseError), transaction.atomic():
        event.delete()

    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert _denied()[0].object_id == str(event.pk)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/changes/changerequest/{change}/delete/",
        "/admin/changes/approval/{approval}/delete/",
        "/admin/maintenance/procedurerun/{run}/delete/",
        "/admin/maintenance/maintenanceexecution/{execution}/delete/",
        "/admin/portal/auditevent/{event}/delete/",
    ],
)
def test_the_admin_offers_no_delete_and_refuses_one_posted(client, superuser, ran_change, url):
    ids = {
        "change": ran_change.pk,
        "approval": Approval.objects.get(change=ran_change).pk,
        "run": ProcedureRun.objects.get(change=ran_change).pk,
        "execution": MaintenanceExecution.objects.get(runs__change=ran_change).pk,
        "event": AuditEvent.objects.latest("sequence").pk,
    }
    client.force_login(superuser)
    changelist = url.split("{")[0]

    page = client.get(changelist).content.decode()
    response = client.post(url.format(**ids), {"post": "yes"})

    assert 'value="delete_selected"' not in page
    assert response.status_code == 403
    assert ChangeRequest.objects.filter(pk=ran_change.pk).exists()
    assert AuditEvent.objects.filter(action="access.denied", username="root").exists()


def _age(change: ChangeRequest, years: int = 7) -> None:
    old = timezone.now() - timedelta(days=365 * years + 2)
    ChangeRequest.objects.filter(pk=change.pk).update(
        created_at=old, updated_at=old, submitted_at=old, decided_at=old, executed_at=old
    )
    Approval.objects.filter(change=change).update(created_at=old, decided_at=old)
    ProcedureRun.objects.filter(change=change).update(
        queued_at=old, started_at=old, finished_at=old
    )
    StepRun.objects.filter(run__change=change).update(started_at=old, finished_at=old)
    PostImplementationReview.objects.filter(change=change).update(reviewed_at=old)


def test_past_six_years_a_change_is_archived_as_a_signed_pack_then_deleted(
    ran_change, make_change, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    recent = make_change(title="Recent", state="closed")
    _age(ran_change)

    call_command("archive_records", "--delete")

    assert not ChangeRequest.objects.filter(pk=ran_change.pk).exists()
    assert not ProcedureRun.objects.filter(change_id=ran_change.pk).exists()
    assert ChangeRequest.objects.filter(pk=recent.pk).exists()
    archived = AuditEvent.objects.get(action="retention.archived")
    assert default_storage.exists(archived.details["file"])
    assert archived.details["file"].startswith("archive/")
    deleted = AuditEvent.objects.get(action="retention.deleted")
    assert deleted.object_id == ran_change.public_id
    # The change's own audit events stay in the chain.
    assert AuditEvent.objects.filter(
        object_id=ran_change.public_id, action="change.completed"
    ).exists()


def test_the_archive_command_without_delete_keeps_the_change(ran_change, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    _age(ran_change)

    call_command("archive_records")

    assert ChangeRequest.objects.filter(pk=ran_change.pk).exists()
    assert AuditEvent.objects.filter(action="retention.archived").count() == 1


def test_the_retention_period_cannot_be_set_below_six_years(tmp_path):
    from tests.portal.test_deploy_check import manage, production_env

    result = manage(["check"], tmp_path, **production_env(RETENTION_YEARS="5"))

    assert result.returncode != 0 and "RETENTION_YEARS" in result.stderr
