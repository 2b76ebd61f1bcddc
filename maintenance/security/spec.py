"""A security update as data (seed: SecurityUpdate, SecurityPatch, VerificationStep).

The procedure stores its updates in the change's procedure parameters, so what the
approvers approved is exactly what runs; these classes read and write that JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class PatchSpec:
    id: str  # CVE-…, GHSA-…, PYSEC-…
    severity: str
    description: str = ""
    artifact: str = ""  # the statement, requirement or script that applies it


@dataclass
class CheckSpec:
    """A verification step: a read-only SQL check or a command, and what it must give."""

    kind: str  # "sql" | "command"
    sql: str = ""
    expect: str = ""
    argv: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.kind == "sql":
            return f"{self.sql} = {self.expect}"
        return " ".join(self.argv)


@dataclass
class UpdateSpec:
    component_id: int
    component: str
    executor: str
    ecosystem: str
    package: str
    current_version: str
    target_version: str
    patches: list[PatchSpec] = field(default_factory=list)
    checks: list[CheckSpec] = field(default_factory=list)
    rollback: str = ""

    @property
    def label(self) -> str:
        return f"{self.component}: {self.package} {self.current_version} → {self.target_version}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpdateSpec:
        values = dict(data)
        values["patches"] = [PatchSpec(**p) for p in data.get("patches", [])]
        values["checks"] = [CheckSpec(**c) for c in data.get("checks", [])]
        return cls(**values)


def updates_of(params: dict[str, Any]) -> list[UpdateSpec]:
    return [UpdateSpec.from_json(u) for u in params.get("updates", [])]
