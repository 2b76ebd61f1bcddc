"""Role groups, created by a data migration and restored by the test suite after a flush."""

from portal.roles import Role


def seed_roles(apps) -> None:
    Group = apps.get_model("auth", "Group")
    for name in Role.values:
        Group.objects.get_or_create(name=name)


def roles_missing(apps) -> bool:
    return apps.get_model("auth", "Group").objects.filter(name__in=Role.values).count() < len(
        Role.values
    )
