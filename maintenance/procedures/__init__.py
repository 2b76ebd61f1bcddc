"""The procedure framework: a registry of procedure kinds.

A kind declares a parameter form, pre-checks, steps, verification and an optional
rollback. Apps register theirs in AppConfig.ready() (dbops adds the database ones).
"""

from __future__ import annotations

from maintenance.procedures.base import Procedure

_registry: dict[str, Procedure] = {}


class UnknownProcedure(KeyError):
    pass


def register(procedure_cls: type[Procedure]) -> type[Procedure]:
    _registry[procedure_cls.kind] = procedure_cls()
    return procedure_cls


def get(kind: str) -> Procedure:
    try:
        return _registry[kind]
    except KeyError:
        raise UnknownProcedure(kind) from None


def choices() -> list[tuple[str, str]]:
    return sorted(((k, p.label) for k, p in _registry.items()), key=lambda c: c[1])


class _Registry:
    get = staticmethod(get)
    choices = staticmethod(choices)
    register = staticmethod(register)


registry = _Registry()
