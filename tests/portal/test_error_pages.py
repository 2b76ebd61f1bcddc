"""Friendly 403, 404, CSRF and 500 pages (issue 8, item 12): a person who is refused,
follows a dead link or meets a fault reads what happened and where to go, never
Django's bare pages or internals."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.views.defaults import server_error

from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db


def test_a_refusal_explains_itself_inside_the_portal(client, requester):
    client.force_login(requester)

    response = client.get(reverse("changes:approvals"))

    assert response.status_code == 403
    body = response.content.decode()
    assert "You may not do that" in body
    assert "Only approvers have an approval queue." in body
    assert 'aria-label="Main"' in body  # the portal's navigation is still there


def test_a_missing_page_is_friendly_and_names_no_internals(client, requester):
    client.force_login(requester)

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    body = response.content.decode()
    assert "Nothing here" in body
    assert "Resolver404" not in body and "tried" not in body


def test_a_hidden_change_reads_exactly_like_a_missing_one(client, requester, other_tenant):
    hidden = ChangeRequestFactory(tenants=[other_tenant])
    client.force_login(requester)

    seen = client.get(hidden.get_absolute_url())
    missing = client.get(hidden.get_absolute_url().replace(str(hidden.pk), str(hidden.pk + 999)))

    assert seen.status_code == missing.status_code == 404
    assert "Nothing here" in seen.content.decode()
    assert hidden.title not in seen.content.decode()
    assert "matches the given query" not in seen.content.decode()
    assert _main(seen) == _main(missing)


def _main(response) -> str:
    body = response.content.decode()
    return body[body.index("<main") : body.index("</main>")]


def test_a_views_own_sentence_is_kept(client, operator):
    client.force_login(operator)

    response = client.get(reverse("maintenance:window", args=[987654]))

    assert response.status_code == 404
    assert "No such window." in response.content.decode()


def test_an_expired_form_says_nothing_was_saved(requester):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(requester)

    response = browser.post(reverse("portal:preferences"), {"timezone": "Europe/Berlin"})

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert "Nothing was saved" in response.content.decode()


def test_the_500_page_stands_alone(rf):
    response = server_error(rf.get("/"))

    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong on our side" in body
    assert "Traceback" not in body
