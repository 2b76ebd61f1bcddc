"""Open a routine window a few minutes from now, so a demo can run one end to end
without waiting for Sunday 01:00 UTC. Audited like every other window."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from maintenance.models import MaintenancePolicy, MaintenanceWindow, WindowType
from portal.audit import audit_record


class Command(BaseCommand):
    help = "Create a routine maintenance window starting in a few minutes (demo use)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--in-minutes", type=int, default=3)
        parser.add_argument("--duration", type=int, default=60)

    def handle(self, *args, in_minutes: int, duration: int, **options) -> None:
        policy = MaintenancePolicy.objects.get(type=WindowType.ROUTINE)
        if not 1 <= in_minutes <= 24 * 60:
            raise CommandError("--in-minutes must be between 1 and 1440.")
        if not 1 <= duration <= policy.max_duration_minutes:
            raise CommandError(f"--duration must be between 1 and {policy.max_duration_minutes}.")
        start = (timezone.now() + timedelta(minutes=in_minutes)).replace(second=0, microsecond=0)
        with transaction.atomic(durable=True):
            window = MaintenanceWindow.objects.create(
                type=WindowType.ROUTINE,
                start=start,
                duration_minutes=duration,
                timezone=policy.timezone,
                notification_offsets=list(policy.notification_offsets),
                title=f"Demo routine window {start:%H:%M} UTC",
            )
            audit_record(
                action="window.demo_opened",
                obj=window,
                details={"start": start.isoformat(), "minutes": duration},
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Window {window.pk} opens at {start:%Y-%m-%d %H:%M} UTC for {duration} minutes: "
                f"/windows/{window.pk}/"
            )
        )
