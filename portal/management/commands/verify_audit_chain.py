from django.core.management.base import BaseCommand, CommandError

from portal.audit import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit hash chain; exit 1 naming the first broken row."

    def handle(self, *args, **options) -> None:
        report = verify_chain()
        if not report.intact:
            first = report.breaks[0]
            raise CommandError(
                f"Audit chain broken at sequence {first.sequence} (row id {first.pk}): "
                f"{first.reason}. {report.checked} rows checked."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {report.checked} rows, head {report.head}")
        )
