"""The unit parser reads values the way PostgreSQL does (guc.c parse_int / parse_real),
and the PGTune maths and the tuning loop's decisions hold on their own."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dbops.configuration import pgtune, units
from dbops.configuration.settings import SettingInfo, check, parse_bool
from dbops.tuning.loop import Loop, LoopSettings, improvement_percent, spread_percent

GB = 1024**3

# (value, the setting's unit, what pg_settings.setting shows) — the server's own answers
# for these inputs, checked with SET/SHOW on PostgreSQL 15.
PARSED = [
    ("128MB", "8kB", Decimal(16384)),
    ("16384", "8kB", Decimal(16384)),
    ("1GB", "8kB", Decimal(131072)),
    ("1024MB", "8kB", Decimal(131072)),
    ("0.5GB", "8kB", Decimal(65536)),
    ("100kB", "8kB", Decimal(12)),  # 12.5 pages, rounded half to even
    ("1TB", "MB", Decimal(1048576)),
    ("1.5MB", "kB", Decimal(1536)),
    (" 64 MB ", "kB", Decimal(65536)),
    ("1e3", "kB", Decimal(1000)),
    ("4096", "kB", Decimal(4096)),
    ("16777216B", "B", Decimal(16777216)),
    ("2GB", "B", Decimal(2 * GB)),
    ("1.5min", "ms", Decimal(90000)),
    ("500us", "ms", Decimal(0)),
    ("1d", "ms", Decimal(86_400_000)),
    ("2h", "ms", Decimal(7_200_000)),
    ("30s", "ms", Decimal(30000)),
    ("5min", "s", Decimal(300)),
    ("90", "s", Decimal(90)),
    ("250ms", "s", Decimal(0)),
    ("1h", "min", Decimal(60)),
]


@pytest.mark.parametrize(("text", "unit", "expected"), PARSED)
def test_it_reads_a_value_in_the_settings_own_unit(text, unit, expected):
    assert units.to_setting_unit(text, unit) == expected


REFUSED = [
    ("64mb", "kB", "case-sensitive"),
    ("64 XB", "kB", "not a memory unit"),
    ("1GB", None, "takes no unit"),
    ("5min", "kB", "not a memory unit"),
    ("10MB", "ms", "not a time unit"),
    ("lots", "kB", "not a number"),
    ("", "kB", "not a number"),
    ("1..5MB", "kB", "not a number"),
]


@pytest.mark.parametrize(("text", "unit", "why"), REFUSED)
def test_it_refuses_what_the_server_refuses_and_says_why(text, unit, why):
    with pytest.raises(units.UnitError) as caught:
        units.to_setting_unit(text, unit)

    assert why in caught.value.message


def test_the_seed_memory_parser_gives_megabytes():
    assert units.parse_memory_mb("1GB") == 1024
    assert units.parse_memory_mb("131072") == 1024  # 8kB pages
    assert units.parse_memory_mb("512MB") == 512


@pytest.mark.parametrize(
    ("setting", "unit", "shown"),
    [("16384", "8kB", "128MB"), ("1536", "kB", "1536kB"), ("300", "s", "5min"), ("-1", "kB", "-1")],
)
def test_it_shows_settings_as_the_server_does(setting, unit, shown):
    assert units.display(setting, unit) == shown


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("on", True),
        ("OFF", False),
        ("t", True),
        ("fa", False),
        ("yes", True),
        ("n", False),
        ("1", True),
        ("0", False),
        ("o", None),
        ("maybe", None),
    ],
)
def test_booleans_follow_the_servers_spellings(text, value):
    assert parse_bool(text) is value


WORK_MEM = SettingInfo("work_mem", "4096", "kB", "integer", "64", "2147483647", None, "user")


def test_a_value_below_pg_settings_min_is_refused_with_the_range():
    checked = check(WORK_MEM, "32kB")

    assert not checked.ok
    assert "outside the valid range 64 .. 2147483647 kB" in checked.message


def test_a_value_within_the_bounds_is_normalized_to_the_setting_unit():
    checked = check(WORK_MEM, "16MB")

    assert checked.ok and checked.normalized == "16384"


def test_pgtune_follows_its_formulas_for_a_16gb_web_server_on_ssd():
    out = {
        s.parameter: s.value
        for s in pgtune.suggest(ram_bytes=16 * GB, cpus=4, storage="ssd", workload="web")
    }

    assert out["max_connections"] == "200"
    assert out["shared_buffers"] == "4GB"
    assert out["effective_cache_size"] == "12GB"
    assert out["maintenance_work_mem"] == "1GB"
    assert out["wal_buffers"] == "16MB"
    assert out["random_page_cost"] == "1.1"
    assert out["effective_io_concurrency"] == "200"
    assert out["huge_pages"] == "try"
    assert out["max_parallel_workers_per_gather"] == "2"
    # (16GB − 4GB) / ((200 + 4) × 3) = 20560kB
    assert out["work_mem"] == "20560kB"


def test_pgtune_gives_a_data_warehouse_its_own_choices():
    out = {
        s.parameter: s.value
        for s in pgtune.suggest(ram_bytes=64 * GB, cpus=16, storage="hdd", workload="dw")
    }

    assert out["max_connections"] == "40"
    assert out["default_statistics_target"] == "500"
    assert out["maintenance_work_mem"] == "2GB"
    assert out["random_page_cost"] == "4"
    assert out["max_parallel_workers_per_gather"] == "8"


def test_the_loop_keeps_what_beats_the_noise_and_rolls_back_the_rest():
    # A recorded sequence of medians: the loop's decisions, not a server, are under test.
    figures = {"BASELINE": 100.0, 1: 140.0, 2: 103.0, 3: 80.0, "FINAL": 139.0}

    def measure(phase, index):
        if phase in ("BASELINE", "FINAL"):
            return figures[phase]
        return figures[index]

    loop = Loop(
        settings=LoopSettings(samples=3, min_stabilise_seconds=0, spread_window=2),
        metric="tps",
        higher_is_better=True,
        measure=measure,
        log=lambda text: None,
        pause=lambda seconds: None,
    )
    base = loop.baseline()
    first = loop.judge(1, base)
    second = loop.judge(2, first.median)
    third = loop.judge(3, first.median)
    final, gain, ok = loop.final(base)

    assert (first.kept, second.kept, third.kept) == (True, False, False)
    assert round(first.improvement) == 40
    assert second.improvement < 0 and third.improvement < 0
    assert final == 139.0 and round(gain) == 39 and ok
    assert [h[0] for h in loop.history].count("STABILISE") == 6


def test_lower_is_better_for_latency_and_spread_is_relative_to_the_median():
    assert improvement_percent(10.0, 8.0, higher_is_better=False) == pytest.approx(20.0)
    assert improvement_percent(10.0, 12.0, higher_is_better=False) == pytest.approx(-20.0)
    assert spread_percent([90.0, 100.0, 110.0]) == pytest.approx(20.0)
