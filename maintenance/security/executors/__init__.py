"""The executor registry. The maintenance layer registers the Python-environment and
allow-listed-script executors; dbops adds the PostgreSQL one in its AppConfig.ready()."""

from __future__ import annotations

from maintenance.security.executors.base import Executor

_registry: dict[str, Executor] = {}


class UnknownExecutor(KeyError):
    pass


def register(executor_cls: type[Executor]) -> type[Executor]:
    _registry[executor_cls.kind] = executor_cls()
    return executor_cls


def get(kind: str) -> Executor:
    try:
        return _registry[kind]
    except KeyError:
        raise UnknownExecutor(kind) from None


def choices() -> list[tuple[str, str]]:
    return sorted(((k, e.label) for k, e in _registry.items()), key=lambda c: c[1])
