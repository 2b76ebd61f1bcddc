"""Beat tasks of security updates: each calls one service."""

from __future__ import annotations

from celery import shared_task

from maintenance.security import advisories, backups, inventory


@shared_task(name="security.refresh_inventory", acks_late=True, ignore_result=True)
def refresh_inventory() -> int:
    return inventory.inventory_refresh_all()


@shared_task(name="security.import_advisories", acks_late=True, ignore_result=True)
def import_advisories() -> dict[str, int]:
    return advisories.advisories_import_directory()


@shared_task(name="security.prune_backups", acks_late=True, ignore_result=True)
def prune_backups() -> int:
    return backups.backups_prune()
