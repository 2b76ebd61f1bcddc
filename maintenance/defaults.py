"""Seed MAINTENANCE_SCHEDULE as policy rows (data migration, and tests after a flush)."""

ROUTINE_RRULE = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=1;BYMINUTE=0;BYSECOND=0"

POLICIES = [
    {
        "type": "ROUTINE",
        "rrule": ROUTINE_RRULE,  # SUNDAY 01:00-05:00 UTC
        "default_duration_minutes": 240,
        "max_duration_minutes": 240,
        "timezone": "UTC",
        "notification_offsets": [1440, 60],
        "min_notice_minutes": 0,
        "approver_roles": [],
        "end_of_month_days": 3,
        "holiday_country": "US",
        "generate_weeks": 8,
    },
    {
        "type": "EMERGENCY",
        "rrule": "",
        "default_duration_minutes": 120,
        "max_duration_minutes": 120,
        "timezone": "UTC",
        "notification_offsets": [60],
        "min_notice_minutes": 60,
        "approver_roles": ["CTO", "HEAD_OF_SECURITY"],
        "end_of_month_days": 3,
        "holiday_country": "US",
        "generate_weeks": 0,
    },
]


def seed(apps) -> None:
    Policy = apps.get_model("maintenance", "MaintenancePolicy")
    for row in POLICIES:
        Policy.objects.get_or_create(type=row["type"], defaults=row)


def missing(apps) -> bool:
    return apps.get_model("maintenance", "MaintenancePolicy").objects.count() < len(POLICIES)
