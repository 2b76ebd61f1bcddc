"""API tokens: stored hashed and shown once, scoped, expiring, revocable, every use audited
by the token's id (never the token), rate-limited per token with a 429."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from api.services import api_token_create, api_token_revoke
from changes.models import ChangeRequest
from portal.errors import Invalid, NotAllowed
from portal.models import AuditEvent
from tests.api.conftest import Api, change_body

pytestmark = pytest.mark.django_db


def _denied(action: str):
    return AuditEvent.objects.filter(action=action, outcome="DENIED")


def test_a_token_is_stored_only_as_its_hash(requester):
    created = api_token_create(by=requester, name="deploy", scopes=["read"], days=30)

    token = ApiToken.objects.get()
    assert token.key_hash == hashlib.sha256(created.key.encode()).hexdigest()
    assert created.key.startswith(f"{token.display_id}_")
    stored = " ".join(str(v) for v in ApiToken.objects.values_list().get())
    assert created.key not in stored
    assert AuditEvent.objects.filter(action="api.token_created", object_id=token.display_id)


def test_it_refuses_a_token_without_a_name_scope_or_sane_expiry(requester):
    with pytest.raises(Invalid, match="Name the token"):
        api_token_create(by=requester, name=" ", scopes=["read"], days=30)
    with pytest.raises(Invalid, match="at least one scope"):
        api_token_create(by=requester, name="x", scopes=["admin"], days=30)
    with pytest.raises(Invalid, match="1 to 365 days"):
        api_token_create(by=requester, name="x", scopes=["read"], days=366)
    assert not ApiToken.objects.exists()


def test_every_use_is_audited_by_the_tokens_id_never_the_token(requester, token_for):
    key = token_for(requester, ["read"])
    token = ApiToken.objects.get()
    api = Api(Client(), key)

    assert api.get("/api/changes/").status_code == 200
    assert api.get("/api/changes/", {"state": "draft"}).status_code == 200

    uses = AuditEvent.objects.filter(action="api.token_used").order_by("sequence")
    assert [(u.object_id, u.username, u.details["method"]) for u in uses] == [
        (token.display_id, "requester", "GET"),
        (token.display_id, "requester", "GET"),
    ]
    assert uses[1].details["path"] == "/api/changes/?state=draft"
    secret = key.split("_", 2)[2]
    assert not any(
        secret in str(row) for row in AuditEvent.objects.values_list("details", "object_id")
    )
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_read_token_cannot_write_and_the_refusal_is_audited(
    requester, tenant, component, token_for
):
    api = Api(Client(), token_for(requester, ["read"]))

    response = api.post("/api/changes/", change_body(component, tenant))

    assert response.status_code == 403
    assert "lacks the “write” scope" in response.json()["detail"]
    assert not ChangeRequest.objects.exists()
    assert _denied("api.scope_refused").count() == 1


def test_a_write_token_cannot_read_or_decide(requester, token_for):
    api = Api(Client(), token_for(requester, ["write"]))

    assert api.get("/api/changes/").status_code == 403
    assert (
        api.post("/api/approvals/1/decide/", {"decision": "APPROVED", "version": 1}).status_code
        == 403
    )


def test_an_expired_token_is_refused_and_audited(requester, token_for):
    api = Api(Client(), token_for(requester, ["read"], days=1))

    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1), tick=False):
        response = api.get("/api/changes/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert "expired" in response.json()["detail"]
    refused = _denied("api.token_refused").get()
    assert refused.object_id == ApiToken.objects.get().display_id
    assert refused.details["why"] == "expired"


def test_a_revoked_token_is_refused(requester, token_for):
    api = Api(Client(), token_for(requester, ["read"]))
    api_token_revoke(token=ApiToken.objects.get(), by=requester)

    response = api.get("/api/changes/")

    assert response.status_code == 401
    assert response.json()["detail"] == "This API token was revoked."


def test_only_its_owner_revokes_a_token(requester, operator, token_for):
    token_for(requester, ["read"])

    with pytest.raises(NotAllowed):
        api_token_revoke(token=ApiToken.objects.get(), by=operator)
    assert ApiToken.objects.get().revoked_at is None


def test_an_unknown_or_malformed_token_is_a_401(db):
    for header in ("Bearer cmp_00000000_nope", "Bearer", "Basic dXNlcjpwYXNz", "Bearer a b"):
        response = Client().get("/api/changes/", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header
        assert response["Content-Type"] == "application/problem+json"


def test_a_disabled_account_s_token_is_refused(requester, token_for):
    api = Api(Client(), token_for(requester, ["read"]))
    requester.is_active = False
    requester.save(update_fields=["is_active"])

    assert api.get("/api/changes/").status_code == 401


def test_it_limits_each_token_and_answers_429_with_retry_after(requester, token_for, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    limited = Api(Client(), token_for(requester, ["read"]))
    other = Api(Client(), token_for(requester, ["read"]))
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        statuses = [limited.get("/api/windows/").status_code for _ in range(5)]
        last = limited.get("/api/windows/")
        assert other.get("/api/windows/").status_code != 429
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        later = limited.get("/api/windows/").status_code

    assert statuses[:3] != [429] * 3 and statuses[3:] == [429, 429]
    assert last.status_code == 429
    assert int(last["Retry-After"]) == 60
    assert last.json()["type"] == "urn:portal:problem:rate-limited"
    assert later != 429
    # The first refusal in a minute is audited; the flood after it is not.
    assert _denied("api.token_rate_limited").count() == 1
    assert AuditEvent.objects.filter(action="api.token_used").count() == 3 + 1 + 1


def test_the_session_works_for_reads_and_needs_csrf_for_writes(requester, tenant, component):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(requester)

    assert browser.get("/api/changes/").status_code == 200
    response = browser.post(
        "/api/changes/", change_body(component, tenant), content_type="application/json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not ChangeRequest.objects.exists()


def test_anonymous_requests_get_a_401_problem(db):
    response = Client().get("/api/changes/")

    assert response.status_code == 401
    assert response.json()["type"] == "urn:portal:problem:not-authenticated"
