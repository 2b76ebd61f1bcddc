"""Version ordering per ecosystem and the OSV range evaluation.

PyPI versions follow PEP 440 (``packaging``). PostgreSQL extension versions are free-form
strings that PostgreSQL itself orders only through its update scripts: version A comes
before B when ``pg_extension_update_paths`` has a path from A to B. Discovery stores that
order with the installed extension; two versions outside it fall back to a natural
order (digit runs compared as numbers: 1.10 after 1.9). SEMVER ranges use SemVer 2.0
precedence. The evaluation is the OSV schema's own ("Evaluation" section): a version is
affected if it is listed in ``versions`` or lies in any range, walking the range's events
in version order (introduced → affected; fixed → not; above last_affected → not), and a
range with ``limit`` events covers only versions below one of them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PYPI = "PyPI"
POSTGRESQL = "PostgreSQL"
PG_EXTENSION = "PostgreSQL-extension"
GENERIC = "Generic"
ECOSYSTEMS = (PYPI, PG_EXTENSION, POSTGRESQL, GENERIC)


class VersionUnparsable(ValueError):
    """A version string the ecosystem's ordering cannot place."""


Compare = Callable[[str, str], int]


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


# --- orderings ---------------------------------------------------------------------------


def _pep440(value: str) -> Version:
    try:
        return Version(value)
    except InvalidVersion:
        raise VersionUnparsable(f"{value!r} is not a PEP 440 version.") from None


def compare_pypi(a: str, b: str) -> int:
    va, vb = _pep440(a), _pep440(b)
    return (va > vb) - (va < vb)


def _natural_key(value: str) -> tuple:
    if not value or len(value) > 100:
        raise VersionUnparsable(f"{value!r} is not a version.")
    parts = re.findall(r"\d+|[^\d]+", value)
    # Numbers sort before words at the same position, so 1.0 < 1.0.1 and 1.9 < 1.10.
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def compare_natural(a: str, b: str) -> int:
    ka, kb = _natural_key(a), _natural_key(b)
    return (ka > kb) - (ka < kb)


def ordering_from_paths(versions: Iterable[str], paths: Iterable[tuple[str, str]]) -> list[str]:
    """A linear order of extension versions consistent with the update paths (an edge
    A→B where A can be updated to B); ties and cycles are broken by the natural order."""
    nodes = sorted(set(versions) | {v for edge in paths for v in edge}, key=_safe_natural)
    after: dict[str, set[str]] = {v: set() for v in nodes}
    before_count = dict.fromkeys(nodes, 0)
    for source, target in set(paths):
        if source != target and target not in after[source]:
            after[source].add(target)
            before_count[target] += 1
    order: list[str] = []
    ready = [v for v in nodes if before_count[v] == 0]
    while ready:
        ready.sort(key=_safe_natural)
        current = ready.pop(0)
        order.append(current)
        for nxt in after[current]:
            before_count[nxt] -= 1
            if before_count[nxt] == 0:
                ready.append(nxt)
    # Whatever sits on a cycle (downgrade scripts) keeps its natural place at the end.
    order.extend(v for v in nodes if v not in order)
    return order


def _safe_natural(value: str) -> tuple:
    try:
        return _natural_key(value)
    except VersionUnparsable:
        return ((2, 0, value),)


def extension_comparator(ordering: Sequence[str] | None = None) -> Compare:
    index = {v: i for i, v in enumerate(ordering or [])}

    def compare(a: str, b: str) -> int:
        if a in index and b in index:
            return _sign(index[a] - index[b])
        return compare_natural(a, b)

    return compare


_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


def _semver_key(value: str) -> tuple:
    match = _SEMVER.match(value)
    if not match:
        raise VersionUnparsable(f"{value!r} is not a SemVer 2.0 version.")
    major, minor, patch, pre = match.groups()
    release = (int(major), int(minor), int(patch))
    if pre is None:
        return (release, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (release, 0, ids)


def compare_semver(a: str, b: str) -> int:
    ka, kb = _semver_key(a), _semver_key(b)
    return (ka > kb) - (ka < kb)


def comparator(ecosystem: str, *, range_type: str = "ECOSYSTEM", ordering=None) -> Compare:
    if range_type == "SEMVER":
        return compare_semver
    if ecosystem == PYPI:
        return compare_pypi
    if ecosystem == PG_EXTENSION:
        return extension_comparator(ordering)
    return compare_natural


def normalise_name(ecosystem: str, name: str) -> str:
    """The name two records of the same package share (PEP 503 for PyPI)."""
    name = (name or "").strip()
    if ecosystem == PYPI:
        return canonicalize_name(name)
    if ecosystem in (PG_EXTENSION, POSTGRESQL):
        return name.lower()
    return name


def newest(versions: Iterable[str], compare: Compare) -> str | None:
    items = list(versions)
    if not items:
        return None
    return max(items, key=functools.cmp_to_key(compare))


# --- OSV evaluation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    affected: bool
    # The smallest "fixed" above the version in the range that matched, if any.
    fixed: str | None = None
    why: str = ""


_KINDS = ("introduced", "fixed", "last_affected", "limit")


def _events(raw: Any) -> list[tuple[str, str]]:
    out = []
    for event in raw or []:
        for kind in _KINDS:
            if isinstance(event, dict) and isinstance(event.get(kind), str):
                out.append((kind, event[kind]))
    return out


def _lowest_first(compare: Compare) -> Compare:
    # "introduced": "0" means "from the very first version" in every ecosystem.
    def cmp(a: str, b: str) -> int:
        if a == b:
            return 0
        if a == "0":
            return -1
        if b == "0":
            return 1
        return compare(a, b)

    return cmp


def _in_range(version: str, events: list[tuple[str, str]], compare: Compare) -> Match:
    cmp = _lowest_first(compare)
    limits = [v for kind, v in events if kind == "limit"]
    if limits and not any(v == "*" or cmp(version, v) < 0 for v in limits):
        return Match(False, why="at or above every limit")
    ordered = sorted(
        [(k, v) for k, v in events if k != "limit"],
        key=functools.cmp_to_key(lambda x, y: cmp(x[1], y[1])),
    )
    vulnerable = False
    for kind, bound in ordered:
        if kind == "introduced" and cmp(version, bound) >= 0:
            vulnerable = True
        elif (kind == "fixed" and cmp(version, bound) >= 0) or (
            kind == "last_affected" and cmp(version, bound) > 0
        ):
            vulnerable = False
    if not vulnerable:
        return Match(False)
    fixes = [v for k, v in ordered if k == "fixed" and cmp(v, version) > 0]
    return Match(True, fixed=fixes[0] if fixes else None, why="in an affected range")


def evaluate(
    version: str,
    *,
    ecosystem: str,
    ranges: list[dict] | None,
    versions: list[str] | None = None,
    ordering: Sequence[str] | None = None,
) -> Match:
    """Is ``version`` affected by one OSV ``affected[]`` entry? Raises VersionUnparsable
    when the version or a bound cannot be ordered in the ecosystem."""
    listed = version in (versions or [])
    best: Match | None = None
    for entry in ranges or []:
        range_type = str(entry.get("type", "")).upper()
        if range_type == "GIT":
            continue  # commit ranges say nothing about released versions
        compare = comparator(ecosystem, range_type=range_type, ordering=ordering)
        compare(version, version)  # an unplaceable version is refused, never guessed
        found = _in_range(version, _events(entry.get("events")), compare)
        if found.affected and (best is None or best.fixed is None):
            best = found
    if best is not None:
        return best
    if listed:
        return Match(True, why="listed among the affected versions")
    return Match(False)
