"""``manage.py gate --component NAME --tenant SLUG``: the deployment gate for scripts.

Prints the answer as JSON and exits 0 when the gate is open, 3 when it is closed (the
API's 423) and 2 for a component or tenant that does not exist. ``--user`` asks as
that user (only the changes they may see count); without it every change counts.
"""

from __future__ import annotations

import json
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from api import gate
from portal.models import Component, Tenant

CLOSED = 3
UNKNOWN = 2


class Command(BaseCommand):
    help = "May this component be deployed for this tenant now? (exit 0 open, 3 closed)"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--component", required=True, help="The component's name.")
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--user", help="Ask as this user (their visible changes only).")

    def handle(self, *args, component: str, tenant: str, user: str | None, **options) -> None:
        asking = None
        if user:
            asking = get_user_model().objects.filter(username=user, is_active=True).first()
            if asking is None:
                self._fail(f"No active user {user!r}.")
        found = Component.objects.filter(name=component).first()
        if found is None:
            self._fail(f"No component named {component!r}.")
        tenants = Tenant.objects.filter(slug=tenant)
        if asking is not None:
            from portal.permissions import visible_tenants

            tenants = visible_tenants(asking).filter(slug=tenant)
        named = tenants.first()
        if named is None:
            self._fail(f"No tenant {tenant!r}.")
        verdict = gate.answer(user=asking, component=found, tenant=named)
        self.stdout.write(json.dumps(verdict.as_json(), indent=2))
        if not verdict.open:
            sys.exit(CLOSED)

    def _fail(self, message: str) -> None:
        self.stderr.write(message)
        sys.exit(UNKNOWN)
