"""API clients acting with a real token, as a pipeline would."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import ChangeRequestFactory, ComponentFactory, ServiceFactory

ALL_SCOPES = ("read", "write", "decide")


@dataclass
class Api:
    """An HTTP client sending one bearer token (or none)."""

    client: Client
    key: str | None

    def _headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.key}"} if self.key else {}

    def get(self, path: str, params: dict | None = None, **extra):
        return self.client.get(path, params or {}, **self._headers(), **extra)

    def post(self, path: str, body: Any = None, **extra):
        return self.client.post(
            path,
            json.dumps({} if body is None else body),
            content_type="application/json",
            **self._headers(),
            **extra,
        )

    def patch(self, path: str, body: Any, **extra):
        return self.client.patch(
            path, json.dumps(body), content_type="application/json", **self._headers(), **extra
        )


@pytest.fixture
def token_for(db):
    from api.services import api_token_create

    def make(user, scopes=ALL_SCOPES, days: int = 30) -> str:
        return api_token_create(by=user, name="pipeline", scopes=list(scopes), days=days).key

    return make


@pytest.fixture
def api_as(token_for):
    def make(user, scopes=ALL_SCOPES) -> Api:
        return Api(Client(), token_for(user, scopes) if user is not None else None)

    return make


@pytest.fixture
def component(db):
    return ComponentFactory(name="edge-proxy", service=ServiceFactory(name="Claims API"))


@pytest.fixture
def make_change(db, requester, tenant, component):
    def make(**kwargs):
        kwargs.setdefault("requester", requester)
        kwargs.setdefault("tenants", [tenant])
        kwargs.setdefault("components", [component])
        kwargs.setdefault("proposed_start", timezone.now() + timedelta(days=10))
        return ChangeRequestFactory(**kwargs)

    return make


def change_body(component, tenant, **overrides) -> dict:
    body = {
        "title": "Rotate TLS certificates",
        "description": "Replace the expiring certificates on the edge.",
        "type": "SECURITY",
        "priority": "LOW",
        "components": [component.name],
        "tenants": [tenant.slug],
        "proposed_start": (timezone.now() + timedelta(days=10)).isoformat(),
        "window_minutes": 60,
        "implementation_plan": "Deploy the new bundle with the rollout tool.",
        "backout_plan": "Redeploy the previous bundle.",
        "verification_plan": "Check the served certificate's expiry date.",
    }
    body.update(overrides)
    return body
