"""Every dbops page for every role: 403 for roles without database operations, 404 for a
target that does not exist or that the user may not see."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

GET_PAGES = ["dbops:target", "dbops:queries", "dbops:explain"]
POST_PAGES = ["dbops:check", "dbops:propose", "dbops:explain"]
NON_OPS = ["requester", "security", "compliance", "cto", "ciso"]


@pytest.fixture
def scoped_target(make_target, tenant):
    """A target holding the data of tenant "acme" only."""
    return make_target(name="acme-db", tenants=[tenant])


@pytest.mark.parametrize("role", NON_OPS)
def test_roles_without_database_operations_get_403(client, request, role, scoped_target):
    client.force_login(request.getfixturevalue(role))

    assert client.get(reverse("dbops:targets")).status_code == 403
    for name in GET_PAGES:
        assert client.get(reverse(name, args=[scoped_target.pk])).status_code == 403, name
    for name in POST_PAGES:
        assert client.post(reverse(name, args=[scoped_target.pk])).status_code == 403, name


@pytest.mark.parametrize("role", ["operator", "engineer"])
def test_operations_and_engineering_use_the_pages(client, request, role, scoped_target):
    client.force_login(request.getfixturevalue(role))

    assert scoped_target.name in client.get(reverse("dbops:targets")).content.decode()
    for name in GET_PAGES:
        assert client.get(reverse(name, args=[scoped_target.pk])).status_code == 200, name
    assert client.post(reverse("dbops:check", args=[scoped_target.pk])).status_code == 302


@pytest.mark.parametrize("name", GET_PAGES + POST_PAGES)
def test_an_unknown_target_is_404(client, operator, name):
    client.force_login(operator)
    url = reverse(name, args=[987654])

    response = client.post(url) if name in POST_PAGES else client.get(url)

    assert response.status_code == 404


def test_a_target_of_a_tenant_the_user_may_not_see_is_404(client, outsider, scoped_target):
    client.force_login(outsider)

    assert scoped_target.name not in client.get(reverse("dbops:targets")).content.decode()
    for name in GET_PAGES:
        assert client.get(reverse(name, args=[scoped_target.pk])).status_code == 404, name
    for name in POST_PAGES:
        assert client.post(reverse(name, args=[scoped_target.pk])).status_code == 404, name


def test_a_shared_target_is_visible_to_every_database_operator(client, outsider, target):
    client.force_login(outsider)

    assert client.get(reverse("dbops:target", args=[target.pk])).status_code == 200


@pytest.mark.parametrize("role", ["operator", "engineer", "requester"])
def test_only_admins_register_and_edit_targets(client, request, role, target):
    client.force_login(request.getfixturevalue(role))

    assert client.get(reverse("dbops:create")).status_code == 403
    assert client.get(reverse("dbops:edit", args=[target.pk])).status_code == 403


def test_an_admin_registers_and_edits_targets(client, superuser, target):
    client.force_login(superuser)

    assert client.get(reverse("dbops:create")).status_code == 200
    assert client.get(reverse("dbops:edit", args=[target.pk])).status_code == 200


def test_the_nav_shows_database_ops_to_operators_only(client, operator, requester):
    client.force_login(operator)
    shown = client.get(reverse("portal:dashboard")).content.decode()
    client.force_login(requester)
    hidden = client.get(reverse("portal:dashboard")).content.decode()

    assert reverse("dbops:targets") in shown
    assert reverse("dbops:targets") not in hidden


def test_anonymous_users_are_sent_to_sign_in(client, target):
    response = client.get(reverse("dbops:target", args=[target.pk]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- bounded portal queries -------------------------------------------------------------

LIST_QUERY_BOUND = 14
PAGE_QUERY_BOUND = 14


@pytest.mark.parametrize("count", [2, 25])
def test_the_target_list_has_bounded_queries(
    client, operator, make_target, tenant, other_tenant, count, django_assert_max_num_queries
):
    for i in range(count):
        make_target(name=f"db-{i:02d}", tenants=[tenant, other_tenant] if i % 2 else [])
    client.force_login(operator)

    with django_assert_max_num_queries(LIST_QUERY_BOUND):
        response = client.get(reverse("dbops:targets"))

    assert response.status_code == 200
    assert f"db-{count - 1:02d}" in response.content.decode()


@pytest.mark.parametrize("snapshots", [1, 20])
def test_the_query_page_has_bounded_queries(
    client, operator, make_target, slow_orders, snapshots, django_assert_max_num_queries
):
    from dbops.services import stats_snapshot_take

    target = make_target()
    for _ in range(snapshots):
        stats_snapshot_take(target=target)
    client.force_login(operator)

    with django_assert_max_num_queries(PAGE_QUERY_BOUND):
        response = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "1"})

    assert response.status_code == 200
    assert "orders(customer_ref)" in response.content.decode()
