"""The change list and approval queue stay flat as rows grow (issue 13): keyset pages,
the queue's rule stated directly (roles, active delegations, separation of duties),
keyset pages of the queue too, bounded queries, and index scans at a few thousand rows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from changes import access, selectors
from changes.models import (
    NO_DUE_TIME,
    Approval,
    ApprovalGroupObjectPermission,
    ChangeRequest,
    State,
)
from changes.services import approval_delegate
from tests.factories import ApprovalFactory, ChangeRequestFactory

pytestmark = pytest.mark.django_db


def _bulk(n, *, requester, tenant, component, state=State.IN_REVIEW, role="SECURITY"):
    """``n`` changes created a minute apart (newest last), each with one approval and
    the guardian permission the review service grants its role's group."""
    start = timezone.now() + timedelta(days=5)
    base = timezone.now() - timedelta(days=30)
    changes = ChangeRequest.objects.bulk_create(
        ChangeRequest(
            title=f"Bulk change {i:05d}",
            description="d",
            type="SECURITY",
            priority="LOW",
            proposed_start=start,
            window_minutes=60,
            implementation_plan="i",
            backout_plan="b",
            verification_plan="v",
            requester=requester,
            state=state,
            category="STANDARD",
            risk_level="LOW",
            risk_score=10,
        )
        for i in range(n)
    )
    for i, change in enumerate(changes):
        change.created_at = base + timedelta(minutes=i)
    ChangeRequest.objects.bulk_update(changes, ["created_at"])
    ChangeRequest.tenants.through.objects.bulk_create(
        ChangeRequest.tenants.through(changerequest=c, tenant=tenant) for c in changes
    )
    ChangeRequest.components.through.objects.bulk_create(
        ChangeRequest.components.through(changerequest=c, component=component) for c in changes
    )
    approvals = Approval.objects.bulk_create(
        Approval(change=c, role=role, due_at=start + timedelta(minutes=i), required_because="r")
        for i, c in enumerate(changes)
    )
    perm = Permission.objects.get(codename="decide_approval")
    group = Group.objects.get(name=role)
    ApprovalGroupObjectPermission.objects.bulk_create(
        ApprovalGroupObjectPermission(group=group, permission=perm, content_object=a)
        for a in approvals
    )
    return changes


def _ids(page) -> list[str]:
    return [c.public_id for c in page]


def _link(body: str, rel: str) -> str | None:
    match = re.search(rf'href="\?([^"]*)" rel="{rel}"', body)
    return match.group(1).replace("&amp;", "&") if match else None


# --- keyset pages --------------------------------------------------------------------


def test_walking_older_pages_shows_every_change_once_newest_first(requester, tenant, component):
    changes = _bulk(60, requester=requester, tenant=tenant, component=component)
    seen, before = [], None
    while True:
        page = selectors.change_page(user=requester, filters={}, before=before)
        seen += _ids(page)
        if page.at_end:
            break
        before = page.older
    assert seen == [c.public_id for c in reversed(changes)]


def test_the_oldest_page_and_newer_pages_walk_back_to_the_newest(requester, tenant, component):
    changes = _bulk(60, requester=requester, tenant=tenant, component=component)
    page = selectors.change_page(user=requester, filters={}, after=selectors.OLDEST)
    assert _ids(page) == [c.public_id for c in reversed(changes[:25])]
    assert page.at_end and not page.at_start
    seen = _ids(page)
    while not page.at_start:
        page = selectors.change_page(user=requester, filters={}, after=page.newer)
        seen = _ids(page) + seen
    assert seen == [c.public_id for c in reversed(changes)]
    assert page.at_start and not page.at_end


def test_the_oldest_page_knows_it_is_the_last_without_asking(requester, tenant, component):
    _bulk(60, requester=requester, tenant=tenant, component=component)
    newer = selectors.change_page(user=requester, filters={}, after=selectors.OLDEST).newer
    with CaptureQueriesContext(connection) as oldest:
        assert selectors.change_page(user=requester, filters={}, after=selectors.OLDEST).at_end
    with CaptureQueriesContext(connection) as middle:
        assert not selectors.change_page(user=requester, filters={}, after=newer).at_end
    assert len(oldest) == len(middle) - 1


def test_a_change_filed_meanwhile_neither_repeats_nor_hides_a_row(
    requester, tenant, component, make_change
):
    changes = _bulk(30, requester=requester, tenant=tenant, component=component)
    first = selectors.change_page(user=requester, filters={})
    make_change(title="Filed while paging")  # newest of all: OFFSET would shift by one
    second = selectors.change_page(user=requester, filters={}, before=first.older)
    assert _ids(first) + _ids(second) == [c.public_id for c in reversed(changes)]


def test_the_page_links_keep_the_filters_and_a_damaged_cursor_shows_the_first_page(
    client, requester, tenant, component
):
    _bulk(30, requester=requester, tenant=tenant, component=component)
    client.force_login(requester)
    body = client.get(reverse("changes:list"), {"q": "Bulk change"}).content.decode()
    older = _link(body, "next")
    assert older is not None and "q=Bulk+change" in older
    assert _link(body, "last") is not None and _link(body, "prev") is None
    deeper = client.get(reverse("changes:list") + "?" + older).content.decode()
    assert "Bulk change 00004" in deeper and "Bulk change 00005" not in deeper
    assert _link(deeper, "prev") is not None and _link(deeper, "first") is not None
    for damaged in ("x-1", "1-", "99999999999999999999-1", "--", "１-1"):
        response = client.get(reverse("changes:list"), {"before": damaged})
        assert response.status_code == 200
        assert "Bulk change 00029" in response.content.decode()


def test_the_list_names_no_change_of_another_tenant_on_any_page(
    requester, tenant, other_tenant, component, make_user
):
    other = make_user("other-requester", ["REQUESTER"], tenants=[other_tenant])
    mine = _bulk(30, requester=requester, tenant=tenant, component=component)
    _bulk(30, requester=other, tenant=other_tenant, component=component)
    seen, before = [], None
    while True:
        page = selectors.change_page(user=requester, filters={}, before=before)
        seen += _ids(page)
        if page.at_end:
            break
        before = page.older
    assert sorted(seen) == sorted(c.public_id for c in mine)


# --- visibility: the same rule as before, written as semi-joins -----------------------


def test_visibility_is_own_tenant_delegation_or_decision(
    requester, security, other_tenant, make_user, component
):
    stranger = make_user("stranger", ["REQUESTER"], tenants=[other_tenant])
    theirs = ChangeRequestFactory(requester=stranger, tenants=[other_tenant])
    delegated = ChangeRequestFactory(requester=stranger, tenants=[other_tenant])
    expired = ChangeRequestFactory(requester=stranger, tenants=[other_tenant])
    decided = ChangeRequestFactory(requester=stranger, tenants=[other_tenant])
    now = timezone.now()
    ApprovalFactory(
        change=delegated, delegated_to=security, delegation_expires_at=now + timedelta(days=1)
    )
    ApprovalFactory(
        change=expired, delegated_to=security, delegation_expires_at=now - timedelta(minutes=1)
    )
    ApprovalFactory(change=decided, decided_by=security, status="APPROVED")  # fmt: skip

    visible = set(access.changes_visible_to(security).values_list("pk", flat=True))

    assert delegated.pk in visible and decided.pk in visible
    assert theirs.pk not in visible and expired.pk not in visible
    assert access.changes_visible_to(security).filter(pk=delegated.pk).count() == 1


# --- the approval queue: the rule stated directly ------------------------------------


def test_the_queue_holds_the_users_roles_and_active_delegations_only(
    security, engineer, requester, tenant, component, make_user
):
    mine = _bulk(3, requester=requester, tenant=tenant, component=component)
    other_role = _bulk(
        2, requester=requester, tenant=tenant, component=component, role="ENGINEERING"
    )
    delegated, expired = other_role
    for change in other_role:  # the service: the delegate's own guardian permission too
        approval_delegate(
            approval=Approval.objects.get(change=change), by=engineer, to_user=security
        )
    Approval.objects.filter(change=expired).update(
        delegation_expires_at=timezone.now() - timedelta(seconds=1)
    )

    queue = list(selectors.approval_queue(security))

    assert {a.change_id for a in queue} == {c.pk for c in mine} | {delegated.pk}
    for approval in queue:
        assert access.approval_actions(security, approval)["decide"], approval


def test_the_queue_leaves_out_what_separation_of_duties_refuses(
    security, operator, requester, tenant, component, make_user
):
    both = make_user("security-requester", ["SECURITY", "REQUESTER"])
    own = _bulk(1, requester=both, tenant=tenant, component=component)[0]
    decided_other_role = _bulk(1, requester=requester, tenant=tenant, component=component)[0]
    ApprovalFactory(
        change=decided_other_role, role="COMPLIANCE", decided_by=both, status="APPROVED"
    )
    ran = ChangeRequestFactory(
        requester=requester,
        tenants=[tenant],
        state=State.COMPLETED,
        started_by=both,
        category="URGENT",
    )
    ApprovalFactory(change=ran, role="SECURITY", phase="RETROACTIVE")
    open_one = _bulk(1, requester=requester, tenant=tenant, component=component)[0]  # fmt: skip

    queue = {a.change_id for a in selectors.approval_queue(both)}

    assert queue == {open_one.pk}
    assert access.sod_refusal(both, Approval.objects.get(change=own))
    assert access.sod_refusal(both, Approval.objects.get(change=ran))
    assert access.sod_refusal(
        both, Approval.objects.get(change=decided_other_role, role="SECURITY")
    )


def test_following_the_queue_links_shows_every_approval_once_soonest_due_first(
    client, security, requester, tenant, component
):
    """Through the page's own links, as a person pages: 120 approvals (five with no due
    time, which come last), pages of 50 forward to the end and back to the start."""
    _bulk(120, requester=requester, tenant=tenant, component=component)
    undated = list(Approval.objects.order_by("pk")[:5])
    Approval.objects.filter(pk__in=[a.pk for a in undated]).update(due_at=None)
    expected = [a.change.public_id for a in selectors.approval_queue(security)]
    assert expected[-5:] == [a.change.public_id for a in undated]
    client.force_login(security)
    url = reverse("changes:approvals")

    def rows(body: str) -> list[str]:
        table = body.split('data-testid="approval-queue"', 1)[1].split("</table>", 1)[0]
        return re.findall(r'<td><a href="[^"]+">(CHG-\d+)</a></td>', table)

    body = client.get(url).content.decode()
    pages = [rows(body)]
    assert _link(body, "prev") is None
    while link := _link(body, "next"):
        body = client.get(url + "?" + link).content.decode()
        pages.append(rows(body))
    assert [len(p) for p in pages] == [50, 50, 20]
    assert [cid for page in pages for cid in page] == expected

    backwards = [pages[-1]]
    while link := _link(body, "prev"):
        body = client.get(url + "?" + link).content.decode()
        backwards.append(rows(body))
    assert backwards[::-1] == pages
    assert 'rel="first"' not in body


def test_a_damaged_or_stale_queue_link_shows_a_page_not_an_error(
    client, security, requester, tenant, component
):
    _bulk(3, requester=requester, tenant=tenant, component=component)
    client.force_login(security)
    url = reverse("changes:approvals")
    for query in ("after=x", "before=1-", "after=99999999999999999999-1", "after=-5-3"):
        response = client.get(url + "?" + query)
        assert response.status_code == 200, query
        assert response.content.decode().count("Bulk change") == 3, query
    past_the_end = selectors._cursor_of(NO_DUE_TIME, 10**12)
    body = client.get(url, {"after": past_the_end}).content.decode()
    assert "No approvals past this point" in body and "Back to the soonest due" in body


# --- bounded queries ---------------------------------------------------------------------

LIST_PAGE_BOUND = 13
QUEUE_PAGE_BOUND = 12


@pytest.fixture(params=[5, 400], ids=["5-changes", "400-changes"])
def rows(request, requester, tenant, component):
    return _bulk(request.param, requester=requester, tenant=tenant, component=component)


def test_every_change_list_page_has_bounded_queries(
    client, requester, rows, django_assert_max_num_queries
):
    client.force_login(requester)
    client.get(reverse("changes:list"))  # per-process caches (content types) warmed
    for params in ({}, {"after": selectors.OLDEST}, {"q": "Bulk"}, {"state": "in_review"}):
        with django_assert_max_num_queries(LIST_PAGE_BOUND):
            response = client.get(reverse("changes:list"), params)
        assert response.status_code == 200
        assert "Bulk change" in response.content.decode()
        older = _link(response.content.decode(), "next")
        if older:
            with django_assert_max_num_queries(LIST_PAGE_BOUND):
                assert client.get(reverse("changes:list") + "?" + older).status_code == 200


def test_the_approval_queue_page_has_bounded_queries(
    client, security, rows, django_assert_max_num_queries
):
    client.force_login(security)
    first = client.get(reverse("changes:approvals")).content.decode()
    queries = ["", _link(first, "next")] if len(rows) > 50 else [""]
    for query in queries:
        with django_assert_max_num_queries(QUEUE_PAGE_BOUND):
            response = client.get(reverse("changes:approvals") + "?" + query)
        assert response.status_code == 200
        assert "Bulk change" in response.content.decode()


# --- index scans at a few thousand rows ------------------------------------------------


def _analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _plan(qs) -> str:
    _analyze()
    return qs.explain()


@pytest.fixture
def thousands(requester, tenant, other_tenant, component, make_user):
    other = make_user("other-requester", ["REQUESTER"], tenants=[other_tenant])
    _bulk(2500, requester=other, tenant=other_tenant, component=component, state=State.CLOSED)
    _bulk(1500, requester=requester, tenant=tenant, component=component, state=State.CLOSED)
    return _bulk(300, requester=requester, tenant=tenant, component=component)


def test_the_change_list_walks_its_index_at_a_few_thousand_rows(requester, thousands):
    base = selectors.change_list(user=requester, filters={})
    page = base[:26]
    middle = thousands[150]
    deep = base.filter(selectors._older_than(middle.created_at, middle.pk))[:26]
    oldest = base.filter(selectors._newer_than(*selectors._parse_cursor(selectors.OLDEST)))
    for qs in (page, deep, oldest.order_by("created_at", "pk")[:26]):
        plan = _plan(qs)
        assert "change_list_idx" in plan, plan
        assert "Seq Scan on changes_changerequest " not in plan, plan
        # The rows come out of the index in the page's order: no Sort under the Limit
        # (a subplan may sort its own few rows, such as the viewer's role groups).
        top = plan.splitlines()[:3]
        assert not any(re.match(r"\s*(->\s*)?Sort\b", line) for line in top), plan
        # The viewer's tenant links are probed per row, never read whole into a hash
        # before the first row (a plan for the whole table, not the page).
        assert not re.search(r"(Seq|Bitmap Heap) Scan on changes_changerequest_tenants", plan), plan


def test_the_approval_queue_reads_only_pending_approvals_through_an_index(security, thousands):
    # Statistics first: on the freshly bulk-loaded tables the planner, believing them
    # nearly empty, could nest-loop this UPDATE's semi-join for twenty minutes, holding
    # back the xmin horizon that every procedure test's LOCKS pre-check watches.
    _analyze()
    Approval.objects.filter(change__state=State.CLOSED).update(status="APPROVED")
    plan = _plan(selectors.approval_queue(security)[:51])
    # The decided history (4,000 of 4,300 rows) is never read: the planner reaches the
    # pending ones by an index on status (with few pending it sorts those; with many it
    # may walk approval_pending_due_idx in the queue's order instead).
    assert re.search(
        r"Index (Only )?Scan on (approval_queue_idx|approval_\w+_idx)", plan
    ) or re.search(r"Index Scan using approval_\w+_idx on changes_approval ", plan), plan
    assert "Seq Scan on changes_approval " not in plan, plan
    # Who may decide is the user's roles, not a scan of every approval's permission rows
    # (tenant visibility still reads the user's few tenant grants).
    assert "approvalgroupobjectpermission" not in plan, plan
    assert "approvaluserobjectpermission" not in plan, plan


def test_a_queue_page_walks_the_queue_index_and_stops_at_its_rows(security, thousands):
    """4,000 approvals left pending on closed changes (a rejected change leaves the other
    roles' approvals pending) in front of the 300 decidable ones: the page still walks
    the queue's order index and asks about each approval's change as it goes, hashing
    neither the changes nor their tenant links before its first row."""
    page = selectors.approval_queue(security)
    deep = page.filter(selectors._above("due", *selectors._due_key(list(page[:150])[-1])))
    for qs in (page[:51], deep[:51]):
        plan = _plan(qs)
        assert "approval_queue_order_idx" in plan, plan
        assert "Sort" not in plan and "Hash Join" not in plan, plan
        # (The user's own delegations and decisions may be hashed: those are theirs.)
        assert "Seq Scan on changes_changerequest" not in plan, plan


def test_the_audit_trail_filters_by_object_with_an_index(compliance, thousands):
    from compliance.selectors import audit_events
    from portal.audit import audit_record

    for n in range(3000):
        audit_record(
            action="test.bulk", object_type="changes.changerequest", object_id=f"CHG-{n % 700:06d}"
        )
    qs = audit_events({"object": ("", "CHG-000042")}).order_by("-sequence")[:51]
    plan = _plan(qs)
    assert "audit_object_idx" in plan, plan
    assert "Seq Scan on portal_auditevent" not in plan, plan


def test_the_refused_ratifications_panel_starts_from_the_few_refused_approvals(thousands):
    """As in a real history: rejections happen before changes run, ratifications after,
    and none of these is refused. Told how the two columns go together (statistics of
    the pairs), the planner reads the refused ratifications from the approvals' index,
    finding none, rather than walking every open change looking for one."""
    ran = ChangeRequest.objects.filter(state=State.CLOSED).order_by("pk")[:3000]
    ChangeRequest.objects.filter(pk__in=ran.values("pk")).update(
        state=State.COMPLETED, executed_at=timezone.now()
    )
    Approval.objects.filter(change__state=State.CLOSED).update(status="REJECTED")
    Approval.objects.bulk_create(
        Approval(
            change_id=pk,
            role="OPERATIONS",
            phase=Approval.Phase.RETROACTIVE,
            status="APPROVED",
            required_because="r",
        )
        for pk in ran.values_list("pk", flat=True)
    )
    with CaptureQueriesContext(connection) as queries:
        assert selectors.refused_ratifications() == []
    _analyze()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "approval_queue_idx" in plan, plan
    assert "Seq Scan on changes_changerequest" not in plan, plan
