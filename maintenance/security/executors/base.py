"""What an executor is: how the portal discovers a component's installed versions and
backs up, patches, verifies and rolls back one security update on it.

An executor never writes portal rows itself: discovery returns what it saw, a session
returns its results, and the services (maintenance.security.services) record them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from portal.models import Component


class ExecutorRefused(ValueError):
    """Configuration or input an executor will not act on; the message says why."""


class UpdateFailed(Exception):
    """A backup, patch, verification or rollback did not succeed."""

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


@dataclass(frozen=True)
class Installed:
    ecosystem: str
    name: str
    version: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What checking an update against the live component found."""

    ecosystem: str
    package: str
    current_version: str
    artifact: str  # the statement or requirement that applies the target version


@dataclass
class Work:
    """Handed to a session: where output goes and what the run is."""

    log: Callable[[str], None]
    run_id: int = 0
    change_id: int = 0
    timeout_seconds: int = 30 * 60
    workdir: Path | None = None


@dataclass
class BackupFile:
    """A backup the session wrote to a local file; the framework stores and hashes it."""

    path: Path
    kind: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Session:
    """One update's backup, patch, verification and rollback on one component."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release what the session holds (connections, locks)."""

    def version(self, update) -> str | None:
        raise NotImplementedError

    def backup(self, update) -> BackupFile:
        raise NotImplementedError

    def apply(self, update, patch) -> dict[str, Any]:
        raise NotImplementedError

    def verify(self, update) -> dict[str, Any]:
        raise NotImplementedError

    def rollback(self, update, backup: Path, metadata: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class Executor:
    kind: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str] = ""
    # How the rollback restores the component, shown to approvers with the update.
    rollback_text: ClassVar[str] = ""
    # Whether several patches of one update are separate artifacts (scripts) or one
    # version change that carries them all (a package or extension version).
    patches_apply_separately: ClassVar[bool] = False

    def clean_config(self, component: Component, config: dict[str, Any]) -> dict[str, Any]:
        """The stored settings of this executor for the component; ExecutorRefused if bad."""
        return {}

    def discover(self, component: Component, config: dict[str, Any]) -> list[Installed]:
        raise NotImplementedError

    def plan(self, component: Component, config: dict[str, Any], package: str, target: str) -> Plan:
        """Check an update against the live component: the package is installed, the
        target version is available and newer. ExecutorRefused says why not."""
        raise NotImplementedError

    def check_kinds(self) -> tuple[str, ...]:
        """The verification step kinds this executor runs ("sql", "command")."""
        return ()

    def check_command(self, component: Component, config: dict[str, Any], argv: list[str]) -> None:
        """Refuse (ExecutorRefused) a verification command this executor would not run."""
        raise ExecutorRefused(f"{component} ({self.kind}) does not run commands.")

    def open(self, component: Component, config: dict[str, Any], work: Work) -> Session:
        raise NotImplementedError
