"""Idempotent demo data: role users, three tenants every demo user may see, a catalog."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from guardian.shortcuts import assign_perm

from portal import registry
from portal.audit import audit_record
from portal.models import Component, Service, Tenant, UserPreference
from portal.roles import Role

DEMO_USERS: list[tuple[str, str, list[str], bool]] = [
    ("requester", "Riley Requester", [Role.REQUESTER], False),
    ("engineer", "Eli Engineer", [Role.ENGINEERING, Role.REQUESTER], False),
    ("operator", "Olivia Operator", [Role.OPERATIONS], False),
    ("security", "Sam Security", [Role.SECURITY], False),
    ("compliance", "Casey Compliance", [Role.COMPLIANCE], False),
    ("cto", "Chris CTO", [Role.CTO], False),
    ("ciso", "Cameron CISO", [Role.HEAD_OF_SECURITY], False),
    ("admin", "Ada Admin", [], True),
]
TENANTS = [
    ("acme-health", "Acme Health", "ops@acme-health.example"),
    ("beacon-clinics", "Beacon Clinics", "it@beacon-clinics.example"),
    ("cedar-labs", "Cedar Labs", "platform@cedar-labs.example"),
]
SERVICES = [
    ("Patient Portal", "Patient-facing web application"),
    ("Claims API", "Claims intake and adjudication API"),
    ("Data Platform", "Reporting and analytics pipeline"),
]
COMPONENTS = [
    ("patient-portal-web", Component.Kind.APPLICATION, "Patient Portal"),
    ("claims-api", Component.Kind.APPLICATION, "Claims API"),
    ("primary-postgres", Component.Kind.DATABASE, "Claims API"),
    ("analytics-postgres", Component.Kind.DATABASE, "Data Platform"),
    ("redis-cache", Component.Kind.INFRASTRUCTURE, "Patient Portal"),
    ("edge-load-balancer", Component.Kind.NETWORK, "Patient Portal"),
]


def demo_password() -> tuple[str, bool]:
    """DEMO_PASSWORD, else one generated once and kept in var/ so reruns agree."""
    if settings.DEMO_PASSWORD:
        return settings.DEMO_PASSWORD, False
    stored = settings.VAR_DIR / "demo-password"
    if stored.exists():
        return stored.read_text().strip(), True
    password = secrets.token_urlsafe(12)
    stored.write_text(password)
    stored.chmod(0o600)
    return password, True


class Command(BaseCommand):
    help = "Create (or refresh) the demo users, tenants, services and components."

    def handle(self, *args, **options) -> None:
        password, generated = demo_password()
        User = get_user_model()
        with transaction.atomic():
            tenants = []
            for slug, name, email in TENANTS:
                tenant, _ = Tenant.objects.update_or_create(
                    slug=slug, defaults={"name": name, "contact_email": email}
                )
                tenants.append(tenant)
            services = {}
            for name, description in SERVICES:
                services[name], _ = Service.objects.get_or_create(
                    name=name, defaults={"description": description}
                )
            for name, kind, service in COMPONENTS:
                Component.objects.get_or_create(
                    name=name, defaults={"kind": kind, "service": services[service]}
                )
            for username, full_name, roles, is_admin in DEMO_USERS:
                first, last = full_name.split(" ", 1)
                user, created = User.objects.get_or_create(
                    username=username,
                    defaults={
                        "first_name": first,
                        "last_name": last,
                        "email": f"{username}@portal.example",
                    },
                )
                user.is_staff = user.is_superuser = is_admin
                user.is_active = True
                user.set_password(password)
                user.save()
                user.groups.set(Group.objects.filter(name__in=roles))
                UserPreference.objects.get_or_create(user=user)
                for tenant in tenants:
                    assign_perm("portal.view_tenant", user, tenant)
                if created:
                    audit_record(action="user.seeded", obj=user, details={"roles": list(roles)})
        self._after_seed()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write("Demo users: " + ", ".join(u[0] for u in DEMO_USERS))
        source = "generated, kept in var/demo-password" if generated else "from DEMO_PASSWORD"
        self.stdout.write(f"Demo password ({source}): {password}")

    def _after_seed(self) -> None:
        """What the other apps add (the routine windows, so a fresh portal shows them)."""
        for seeder in registry.demo_seeders():
            self.stdout.write(seeder())
