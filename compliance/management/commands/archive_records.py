"""Archive the changes past their retention period: a signed evidence pack each, kept in
storage under archive/<year>/; with --delete, the change is removed after its pack."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from compliance.archive import archive_candidates, change_archive


class Command(BaseCommand):
    help = (
        "Write a signed evidence pack to storage for every finished change past the "
        "retention period (RETENTION_YEARS, at least 6); --delete then removes each one."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--delete",
            action="store_true",
            help="after its pack is stored, delete the change, its approvals and runs",
        )
        parser.add_argument("--dry-run", action="store_true", help="only list the changes")

    def handle(self, *args, delete: bool, dry_run: bool, **options) -> None:
        changes = archive_candidates()
        if not changes:
            self.stdout.write("Nothing is past its retention period.")
            return
        for change in changes:
            if dry_run:
                self.stdout.write(f"{change.public_id} would be archived")
                continue
            stored = change_archive(change=change, delete=delete)
            verb = "archived and deleted" if delete else "archived"
            self.stdout.write(f"{change.public_id} {verb}: {stored}")
