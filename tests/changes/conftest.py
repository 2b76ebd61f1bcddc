from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ChangeRequestFactory, ComponentFactory, ServiceFactory


@pytest.fixture
def component(db):
    return ComponentFactory(name="primary-postgres")


@pytest.fixture
def service(db, component):
    svc = ServiceFactory(name="Claims API")
    component.service = svc
    component.save()
    return svc


@pytest.fixture
def make_change(db, requester, tenant, component):
    def make(**kwargs):
        kwargs.setdefault("requester", requester)
        kwargs.setdefault("tenants", [tenant])
        kwargs.setdefault("components", [component])
        kwargs.setdefault("proposed_start", timezone.now() + timedelta(days=10))
        return ChangeRequestFactory(**kwargs)

    return make


@pytest.fixture
def draft(make_change):
    return make_change()


@pytest.fixture
def submitted_change(make_change):
    """A standard SECURITY change in review: SECURITY must approve."""
    from changes.services import change_submit

    change = make_change(type="SECURITY", priority="LOW")
    return change_submit(change=change, by=change.requester)
