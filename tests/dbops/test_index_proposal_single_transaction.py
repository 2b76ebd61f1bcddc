"""An index proposal is one transaction (issue 9, move 7): the draft change, the
baseline snapshot, the suggestion and its CREATE INDEX procedure are written together,
so a failure in the last step leaves nothing behind.

Before the restructure every service was its own durable transaction and the proposal
ran as three: a failure attaching the procedure left a draft change without its
suggestion. The last step is made to fail by taking the procedure kind out of the
registry for the test.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from changes.models import ChangeRequest
from dbops.models import IndexSuggestion, QueryStatsSnapshot
from maintenance import procedures
from maintenance.models import ChangeProcedure
from portal.models import AuditEvent
from tests.dbops.test_queries import _propose_form

pytestmark = pytest.mark.django_db


def _written() -> tuple[int, ...]:
    return (
        ChangeRequest.objects.count(),
        IndexSuggestion.objects.count(),
        QueryStatsSnapshot.objects.count(),
        ChangeProcedure.objects.count(),
        AuditEvent.objects.exclude(outcome="DENIED").count(),
    )


def test_a_failure_attaching_the_procedure_leaves_nothing_behind(
    client, operator, make_target, slow_orders, monkeypatch
):
    target = make_target()
    client.force_login(operator)
    page = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "1"})
    form = _propose_form(page.content.decode())
    before = _written()
    monkeypatch.delitem(procedures._registry, "db_create_index")

    response = client.post(form["url"], form["data"])

    assert response.status_code == 400
    assert "Unknown procedure kind" in response.content.decode()
    assert _written() == before
    assert not AuditEvent.objects.filter(action="dbops.index.proposed").exists()
    assert not AuditEvent.objects.filter(action="change.created").exists()


def test_the_same_proposal_succeeds_once_the_kind_is_registered(
    client, operator, make_target, slow_orders
):
    """The control: nothing but the missing kind stood in the way."""
    target = make_target()
    client.force_login(operator)
    page = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "1"})
    form = _propose_form(page.content.decode())
    changes, suggestions, snapshots, items, _ = _written()

    response = client.post(form["url"], form["data"])

    assert response.status_code == 302
    assert ChangeRequest.objects.count() == changes + 1
    assert IndexSuggestion.objects.count() == suggestions + 1
    assert QueryStatsSnapshot.objects.count() == snapshots + 1
    assert ChangeProcedure.objects.get().kind == "db_create_index"
    assert ChangeProcedure.objects.count() == items + 1
