from __future__ import annotations

import functools

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from portal.models import Component, Service, Tenant

PASSWORD = "correct horse battery staple"


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
        model = "changes.ChangeRequest"
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Rotate TLS certificates #{n}")
    description = "Replace the expiring certificates on the edge."
    type = "SECURITY"
    priority = "MEDIUM"
    proposed_start = factory.LazyFunction(
        lambda: (
            __import__("django.utils.timezone").utils.timezone.now()
            + __import__("datetime").timedelta(days=10)
        )
    )
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
        model = "changes.Approval"
        skip_postgeneration_save = True

    change = factory.SubFactory(ChangeRequestFactory)
    role = "SECURITY"
    phase = "PRE"

    @factory.post_generation
    def grant(self, create, extracted, **kwargs):
        if create:
            assign_perm(self.permission, Group.objects.get(name=self.role), self)


RETROACTIVE_ROLES = ("SECURITY", "ENGINEERING", "OPERATIONS", "COMPLIANCE")


def urgent_change(*, state: str, retroactive=RETROACTIVE_ROLES, **kwargs):
    """An urgent change (Emergency Committee) in ``state`` with its retroactive reviews
    open, as the default policy requires them."""
    change = ChangeRequestFactory(state=state, category="URGENT", risk_level="CRITICAL", **kwargs)
    for role in retroactive:
        ApprovalFactory(change=change, role=role, phase="RETROACTIVE")
    return change
