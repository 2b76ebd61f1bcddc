"""Which tenants a user may view: guardian's ``view_tenant`` on the tenant, held by the
user or by one of their groups. ``portal.permissions.visible_tenants`` reads guardian's
rows with its own SQL, so guardian's ``get_objects_for_user`` is the reference."""

from __future__ import annotations

import random

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm, get_objects_for_user

from portal.models import Tenant
from portal.permissions import visible_tenant_list, visible_tenants
from tests.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _ids(tenants) -> set[int]:
    return {tenant.pk for tenant in tenants}


def test_a_user_sees_the_tenants_granted_to_them_or_to_a_group_of_theirs():
    mine, my_teams, another_teams, nobodys = (
        TenantFactory(slug=slug) for slug in ("mine", "my-team", "other-team", "nobody")
    )
    team, other_team = Group.objects.create(name="team-a"), Group.objects.create(name="team-b")
    user, colleague = UserFactory(username="ana"), UserFactory(username="ben")
    user.groups.add(team)
    colleague.groups.add(other_team)
    assign_perm("portal.view_tenant", user, mine)
    assign_perm("portal.view_tenant", team, my_teams)
    assign_perm("portal.view_tenant", other_team, another_teams)
    assign_perm("portal.view_tenant", colleague, nobodys)
    # Another permission on a tenant is not the right to view it.
    assign_perm("portal.change_tenant", user, nobodys)
    assign_perm("portal.change_tenant", team, another_teams)

    assert _ids(visible_tenants(user)) == {mine.pk, my_teams.pk}
    assert _ids(visible_tenants(colleague)) == {nobodys.pk, another_teams.pk}
    assert [t.slug for t in visible_tenant_list(user)] == sorted(
        ["mine", "my-team"], key=lambda slug: Tenant.objects.get(slug=slug).name
    )


def test_leaving_a_group_takes_its_tenants_away():
    tenant = TenantFactory(slug="through-the-team")
    team = Group.objects.create(name="team-c")
    user = UserFactory(username="cy")
    user.groups.add(team)
    assign_perm("portal.view_tenant", team, tenant)
    assert _ids(visible_tenants(user)) == {tenant.pk}

    user.groups.remove(team)

    assert _ids(visible_tenants(user)) == set()


def test_the_visible_tenants_work_as_a_subquery_and_filter_further():
    wanted, other = TenantFactory(slug="wanted"), TenantFactory(slug="other")
    user = UserFactory(username="dee")
    assign_perm("portal.view_tenant", user, wanted)

    assert list(Tenant.objects.filter(pk__in=visible_tenants(user).values("pk"))) == [wanted]
    assert visible_tenants(user).filter(slug="other").first() is None
    assert visible_tenants(user).filter(slug="wanted").get() == wanted
    assert other not in visible_tenants(user)


def test_compliance_and_superusers_see_every_tenant_and_anonymous_none(
    compliance, superuser, tenant, other_tenant
):
    from django.contrib.auth.models import AnonymousUser

    every = set(Tenant.objects.values_list("pk", flat=True))
    assert _ids(visible_tenants(compliance)) == every
    assert _ids(visible_tenants(superuser)) == every
    assert list(visible_tenants(AnonymousUser())) == []


def test_visible_tenants_agree_with_guardian_over_random_grants():
    """Random users, groups, memberships and grants of view and change; for every user
    the portal's rule and guardian's own query name the same tenants."""
    rng = random.Random(13)
    tenants = [TenantFactory(slug=f"random-{i}") for i in range(8)]
    groups = [Group.objects.create(name=f"random-group-{i}") for i in range(4)]
    users = [UserFactory(username=f"random-user-{i}") for i in range(10)]
    for user in users:
        user.groups.set(rng.sample(groups, rng.randint(0, 3)))
        for tenant in rng.sample(tenants, rng.randint(0, 3)):
            assign_perm(rng.choice(["portal.view_tenant", "portal.change_tenant"]), user, tenant)
    for group in groups:
        for tenant in rng.sample(tenants, rng.randint(0, 3)):
            assign_perm(rng.choice(["portal.view_tenant", "portal.change_tenant"]), group, tenant)

    seen = set()
    for user in users:
        expected = _ids(
            get_objects_for_user(
                user, "portal.view_tenant", klass=Tenant, accept_global_perms=False
            )
        )
        assert _ids(visible_tenants(user)) == expected, user.username
        seen.add(frozenset(expected))
    # The grants are varied enough to tell rules apart: not everyone sees the same.
    assert len(seen) > 3
