"""Every concrete model of the project's own apps has a factory in tests/factories.py,
and every factory there makes a row that saves, reads back and passes ``full_clean``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import factory
import pytest
from django.apps import apps
from django.db import models
from django_fsm import FSMFieldMixin

from tests import factories

ROOT = Path(__file__).resolve().parent.parent


def _project_models() -> list[type[models.Model]]:
    """Concrete models of the apps whose code lives in this repository (not Django's or
    a third party's, not the through tables Django creates for many-to-many fields)."""
    found = []
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if not path.is_relative_to(ROOT) or "site-packages" in path.parts:
            continue
        found += [m for m in config.get_models() if not m._meta.proxy]
    return found


FACTORIES = sorted(
    (
        value
        for value in vars(factories).values()
        if inspect.isclass(value)
        and issubclass(value, factory.django.DjangoModelFactory)
        and value._meta.model is not None
    ),
    key=lambda f: f.__name__,
)


def _model(factory_class: type[factory.django.DjangoModelFactory]) -> type[models.Model]:
    return factory_class._meta.get_model_class()


def test_every_project_model_has_a_factory():
    covered = {_model(f)._meta.label for f in FACTORIES}
    missing = [
        m._meta.label
        for m in _project_models()
        if m._meta.label not in covered and m._meta.label not in factories.NO_FACTORY
    ]
    assert not missing, (
        f"No factory in tests/factories.py for: {', '.join(sorted(missing))}. Add one, or "
        "list the model in NO_FACTORY with the reason."
    )


def test_the_exclusions_name_project_models_without_a_factory():
    labels = {m._meta.label for m in _project_models()}
    covered = {_model(f)._meta.label for f in FACTORIES}
    stale = sorted(set(factories.NO_FACTORY) - (labels - covered))
    assert not stale, f"NO_FACTORY lists models that are not project models or have one: {stale}"


def test_the_search_finds_the_project_apps_only():
    found = {m._meta.app_label for m in _project_models()}
    assert found == {"portal", "changes", "maintenance", "dbops", "compliance", "api"}


def _protected_states(obj: models.Model) -> list[models.Field]:
    return [f for f in obj._meta.concrete_fields if isinstance(f, FSMFieldMixin) and f.protected]


def _not_cleaned(obj: models.Model) -> list[str]:
    """Fields ``full_clean`` cannot judge fairly, as the services write them:

    - a protected FSM field: ``clean_fields`` assigns the cleaned value back, which the
      field refuses ("Direct state modification is not allowed"); checked apart;
    - a nullable field left NULL, or a field left at an empty default (``[]``, ``{}``):
      Django's blank check is a form's rule, and both are what the model declares.
    """
    names = [f.name for f in _protected_states(obj)]
    for f in obj._meta.concrete_fields:
        value: Any = getattr(obj, f.attname)
        left_null = value is None and f.null
        left_empty = f.has_default() and value in f.empty_values and value == f.get_default()
        if left_null or left_empty:
            names.append(f.name)
    return names


@pytest.mark.django_db
@pytest.mark.parametrize("factory_class", FACTORIES, ids=lambda f: f.__name__)
def test_the_factory_makes_a_valid_row(factory_class):
    made = factory_class()
    model = _model(factory_class)
    assert isinstance(made, model)
    assert made.pk is not None
    row = model._default_manager.get(pk=made.pk)
    row.full_clean(exclude=_not_cleaned(row))
    for field in _protected_states(row):
        assert getattr(row, field.attname) in {value for value, _ in field.choices}


@pytest.mark.django_db
@pytest.mark.parametrize("factory_class", FACTORIES, ids=lambda f: f.__name__)
def test_the_factory_makes_two_rows_side_by_side(factory_class):
    """Unique fields and constraints leave room for a second row (or it is the same one,
    for a factory that gets or creates)."""
    first, second = factory_class(), factory_class()
    get_or_create = factory_class._meta.django_get_or_create
    assert first.pk != second.pk or get_or_create


@pytest.mark.django_db
def test_audit_rows_from_the_factory_extend_the_chain():
    from portal.audit import compute_hash

    first, second = factories.AuditEventFactory(), factories.AuditEventFactory(action="x.y")
    assert second.sequence == first.sequence + 1
    assert second.prev_hash == first.hash
    for event in (first, second):
        assert compute_hash(event.prev_hash, event) == event.hash


@pytest.mark.django_db
def test_the_database_target_factory_stores_the_password_encrypted():
    target = factories.DatabaseTargetFactory(password="s3cret-for-the-test")
    assert "s3cret" not in target.password_encrypted
    assert target.get_password() == "s3cret-for-the-test"
    assert not factories.DatabaseTargetFactory(password="").has_password
