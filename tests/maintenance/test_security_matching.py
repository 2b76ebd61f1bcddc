# ruff: noqa: E501  (the case table reads best one case a line)
"""OSV version-range matching, case by case: PEP 440 for PyPI, PostgreSQL's own order of
extension versions (its update paths) for extensions, SemVer for SEMVER ranges; and
the severity an advisory carries."""

from __future__ import annotations

import pytest

from maintenance.security import osv, versions
from maintenance.security.versions import PG_EXTENSION, PYPI, evaluate

HSTORE = ["1.4", "1.5", "1.6", "1.7", "1.8"]
# Update scripts name a beta before its release: 1.0beta1 → 1.0 → 1.1. Natural order
# would put 1.0beta1 after 1.0.
BETA = versions.ordering_from_paths(
    ["1.0beta1", "1.0", "1.1"], [("1.0beta1", "1.0"), ("1.0", "1.1"), ("1.0beta1", "1.1")]
)


def ecosystem_range(*events: dict) -> list[dict]:
    return [{"type": "ECOSYSTEM", "events": list(events)}]


CASES = [
    # (id, ecosystem, version, ranges, versions list, ordering, affected, fixed)
    ("pypi-below-fix", PYPI, "2.31.0", ecosystem_range({"introduced": "0"}, {"fixed": "2.32.0"}), [], None, True, "2.32.0"),
    ("pypi-at-fix", PYPI, "2.32.0", ecosystem_range({"introduced": "0"}, {"fixed": "2.32.0"}), [], None, False, None),
    ("pypi-before-introduced", PYPI, "1.9", ecosystem_range({"introduced": "2.0"}, {"fixed": "2.5"}), [], None, False, None),
    ("pypi-at-introduced", PYPI, "2.0", ecosystem_range({"introduced": "2.0"}, {"fixed": "2.5"}), [], None, True, "2.5"),
    ("pypi-pre-release-is-before-release", PYPI, "2.5rc1", ecosystem_range({"introduced": "2.0"}, {"fixed": "2.5"}), [], None, True, "2.5"),
    ("pypi-numeric-not-text-order", PYPI, "1.10", ecosystem_range({"introduced": "0"}, {"fixed": "1.9"}), [], None, False, None),
    ("pypi-last-affected-included", PYPI, "3.1.4", ecosystem_range({"introduced": "3.0"}, {"last_affected": "3.1.4"}), [], None, True, None),
    ("pypi-above-last-affected", PYPI, "3.1.5", ecosystem_range({"introduced": "3.0"}, {"last_affected": "3.1.4"}), [], None, False, None),
    ("pypi-second-range", PYPI, "3.2.1", ecosystem_range({"introduced": "1.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0.0"}, {"fixed": "3.2.5"}), [], None, True, "3.2.5"),
    ("pypi-between-ranges", PYPI, "2.0", ecosystem_range({"introduced": "1.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0.0"}, {"fixed": "3.2.5"}), [], None, False, None),
    ("pypi-events-in-any-order", PYPI, "1.4", ecosystem_range({"fixed": "1.5"}, {"introduced": "1.2"}), [], None, True, "1.5"),
    ("pypi-limit", PYPI, "4.0", ecosystem_range({"introduced": "0"}, {"limit": "4.0"}), [], None, False, None),
    ("pypi-listed-version", PYPI, "0.9.1", [], ["0.9.0", "0.9.1"], None, True, None),
    ("pypi-git-range-ignored", PYPI, "1.0", [{"type": "GIT", "repo": "https://example.org/r", "events": [{"introduced": "abc"}]}], [], None, False, None),
    ("semver-pre-release", PYPI, "1.0.0-rc.1", [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}], [], None, True, "1.0.0"),
    ("ext-hstore-1.7-before-1.8", PG_EXTENSION, "1.7", ecosystem_range({"introduced": "0"}, {"fixed": "1.8"}), [], HSTORE, True, "1.8"),
    ("ext-hstore-at-fix", PG_EXTENSION, "1.8", ecosystem_range({"introduced": "0"}, {"fixed": "1.8"}), [], HSTORE, False, None),
    ("ext-introduced-later", PG_EXTENSION, "1.5", ecosystem_range({"introduced": "1.6"}, {"fixed": "1.8"}), [], HSTORE, False, None),
    ("ext-last-affected", PG_EXTENSION, "1.7", ecosystem_range({"introduced": "1.4"}, {"last_affected": "1.7"}), [], HSTORE, True, None),
    ("ext-natural-order-1.10-after-1.9", PG_EXTENSION, "1.10", ecosystem_range({"introduced": "1.4"}, {"fixed": "1.10"}), [], None, False, None),
    ("ext-natural-order-1.9-before-1.10", PG_EXTENSION, "1.9", ecosystem_range({"introduced": "1.4"}, {"fixed": "1.10"}), [], None, True, "1.10"),
    ("ext-update-path-beta-before-release", PG_EXTENSION, "1.0beta1", ecosystem_range({"introduced": "0"}, {"fixed": "1.0"}), [], BETA, True, "1.0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("ecosystem", "version", "ranges", "listed", "ordering", "affected", "fixed"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_version_is_affected_exactly_as_the_osv_evaluation_says(
    ecosystem, version, ranges, listed, ordering, affected, fixed
):
    match = evaluate(
        version, ecosystem=ecosystem, ranges=ranges, versions=listed, ordering=ordering
    )

    assert (match.affected, match.fixed) == (affected, fixed)


def test_natural_order_alone_would_get_the_beta_wrong():
    # Without the update paths the same question has the opposite answer.
    match = evaluate(
        "1.0beta1",
        ecosystem=PG_EXTENSION,
        ranges=ecosystem_range({"introduced": "0"}, {"fixed": "1.0"}),
    )

    assert not match.affected
    assert BETA == ["1.0beta1", "1.0", "1.1"]


def test_an_unparsable_pypi_version_is_refused_not_guessed():
    with pytest.raises(versions.VersionUnparsable):
        evaluate("not a version!", ecosystem=PYPI, ranges=ecosystem_range({"introduced": "0"}))


def test_pypi_names_are_matched_in_their_normalised_form():
    assert versions.normalise_name(PYPI, "Django_Celery.Beat") == "django-celery-beat"


@pytest.mark.parametrize(
    ("vector", "score", "rating"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.8, "MEDIUM"),
        ("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5, "MEDIUM"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "MEDIUM"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "HIGH"),
    ],
)
def test_the_cvss_v3_base_score_follows_the_specification(vector, score, rating):
    assert osv.cvss3_base_score(vector) == score
    assert osv.rating(score) == rating


def test_a_github_severity_label_wins_over_the_vector():
    [record] = osv.parse(
        b'{"id": "GHSA-aaaa-bbbb-cccc", "modified": "2024-01-01T00:00:00Z",'
        b' "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],'
        b' "database_specific": {"severity": "MODERATE"}, "affected": []}'
    )

    assert (record.severity, record.cvss_score) == ("MEDIUM", 9.8)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"not json at all", "is not JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b'{"schema": "CycloneDX"}', "has no OSV 'id'"),
        (b'{"id": "GHSA-aaaa-bbbb-cccc"}', "'modified'"),
        (b'{"id": "GHSA-aaaa-bbbb-cccc", "modified": "yesterday"}', "not an RFC 3339 time"),
        (
            b'{"id": "GHSA-aaaa-bbbb-cccc", "modified": "2024-01-01T00:00:00Z",'
            b' "affected": [{"package": {"name": "x"}}]}',
            "needs an 'ecosystem' and a 'name'",
        ),
        (
            b'{"id": "GHSA-aaaa-bbbb-cccc", "modified": "2024-01-01T00:00:00Z", "affected":'
            b' [{"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [{"type": "ECOSYSTEM",'
            b' "events": [{"fixed": "1.0"}]}]}]}',
            "no 'introduced' event",
        ),
        (b"[]", "holds no advisory"),
    ],
)
def test_what_is_not_osv_json_is_named(data, says):
    with pytest.raises(osv.NotOSV) as refused:
        osv.parse(data, name="upload.json")

    assert says in str(refused.value)
