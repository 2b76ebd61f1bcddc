from celery import shared_task

from dbops import services


@shared_task(name="dbops.snapshot_statistics", acks_late=True, ignore_result=True)
def snapshot_statistics(target_ids: list[int] | None = None) -> list[int]:
    """Daily from beat (every active target), or for the given target ids."""
    return services.stats_snapshots_take(target_ids=target_ids)
