"""Benchmark: every page of issue 13 at 1,000 and 100,000 changes, against the floor.

    make bench-pages                                        # both scales, ~30 minutes
    .venv/bin/python -m tests.bench.bench_pages --scales 1000 --repeat 3   # a quick look
    .venv/bin/python -m tests.bench.bench_pages --scales 100000 --pages approvals \
        --skip-verify --skip-throughput --keep              # one page, then EXPLAIN

Nothing is needed but the installed PostgreSQL and Redis binaries: it starts its own
throwaway cluster and redis-server (``tests/services.py``), loads each scale into a
database of its own with COPY (``tests/bench/load.py``), serves it with gunicorn exactly
as ``runportal`` does (2 workers x 4 threads) and times, per page, the median of
``--repeat`` requests (after warm-up requests) on a kept-alive connection, as the page's
user. The pages take turns, a request each per round, so load from elsewhere on the
machine falls on all of them alike. The floor is ``/_bench/floor/``
(``tests/bench/urls.py``): an authenticated page rendering the base template and
nothing else, in the same processes.

Then, at each scale:
- the iCalendar feed rendered uncached (in a fresh process) against ``COPY`` of the rows
  it shows (windows, slots, titles); the page timing above is the feed's cache;
- ``verify_audit_chain``'s verification in a fresh process (time and peak RSS) against
  ``COPY portal_auditevent TO STDOUT``; it must find the loaded chain intact, every row;
- throughput: ``--clients`` threads (kept-alive connections, one session each) for
  ``--seconds`` on the floor, on ``/changes/`` and on a change's page; requests/s, p95,
  errors.

It prints the load average, the results as a Markdown table and, last, one JSON object.
``--keep`` then holds the cluster (its URL printed) until interrupted.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.bench.scale import CLUSTER_SETTINGS, Site, django_setup, scratch_root

GOAL_FLOOR = 3.0
GOAL_GROWTH = 1.5


@dataclass(frozen=True)
class PageSpec:
    key: str
    label: str
    user: str | None
    path: Callable[[Site], str]
    expect: str = ""


def _last_page(site: Site) -> str:
    """The change list's last page, as its own navigation links to it."""
    client = site.client("requester")
    body = client.get("/changes/").body
    match = re.search(r'href="([^"]+)"[^>]*rel="last"', body) or re.search(
        r'rel="last"[^>]*href="([^"]+)"', body
    )
    if match:
        return "/changes/" + html.unescape(match.group(1))
    pages = re.search(r"Page \d+ of (\d+)", body)
    return f"/changes/?page={pages.group(1)}" if pages else "/changes/"


PAGES = [
    PageSpec("floor", "floor (`/_bench/floor/`)", "requester", lambda s: "/_bench/floor/", "Floor"),
    PageSpec("approvals", "`/approvals/` as security", "security", lambda s: "/approvals/", "CHG-"),
    PageSpec(
        "feed",
        "iCalendar feed",
        None,
        lambda s: f"/calendar/feed/{s.info['feed_token']}.ics",
        "BEGIN:VEVENT",
    ),
    PageSpec("changes_last", "`/changes/` last page, requester", "requester", _last_page, "CHG-"),
    PageSpec(
        "changes", "`/changes/` page 1, requester", "requester", lambda s: "/changes/", "CHG-"
    ),
    PageSpec(
        "changes_q",
        "`/changes/?q=component-07`",
        "requester",
        lambda s: "/changes/?q=component-07",
        "component-07",
    ),
    PageSpec("dashboard", "dashboard, compliance", "compliance", lambda s: "/", "Approvals"),
    PageSpec("calendar", "calendar month, operator", "operator", lambda s: "/calendar/", "cal-"),
    PageSpec(
        "audit",
        "audit trail, halfway down (`/reports/?before=…`)",
        "compliance",
        lambda s: f"/reports/?before={s.info['audit_middle']}",
        "change.",
    ),
    PageSpec(
        "detail",
        "change detail",
        "requester",
        lambda s: f"/changes/{s.info['detail_change']}/",
        "CHG-",
    ),
]


def _client(site: Site, user: str | None):
    from tests.bench.drills.harness import Client

    return site.client(user) if user else Client(site.base_url, timeout=300)


def time_pages(site: Site, specs: list[PageSpec], *, repeat: int, warmup: int = 3) -> dict:
    """Each page's median of ``repeat`` requests, after ``warmup``. The pages take turns,
    one request each per round, so a neighbour's load on a shared machine falls on every
    page alike and the ratios to the floor stay fair."""
    paths = {spec.key: spec.path(site) for spec in specs}
    clients = {spec.key: _client(site, spec.user) for spec in specs}
    times: dict[str, list[float]] = {spec.key: [] for spec in specs}
    sizes: dict[str, int] = {}
    for n in range(warmup + repeat):
        for spec in specs:
            path = paths[spec.key]
            answer = clients[spec.key].get(path)
            if answer.status != 200 or (spec.expect and spec.expect not in answer.body):
                raise RuntimeError(
                    f"{spec.key}: GET {path} answered {answer.status} "
                    f"without {spec.expect!r}: {answer.body[:800]}"
                )
            if n >= warmup:
                times[spec.key].append(answer.seconds)
                sizes[spec.key] = len(answer.body)
    for client in clients.values():
        client.close()
    return {
        key: {
            "path": paths[key],
            "median_ms": round(statistics.median(ts) * 1000, 1),
            "p90_ms": round(sorted(ts)[int(0.9 * (len(ts) - 1))] * 1000, 1),
            "bytes": sizes[key],
        }
        for key, ts in times.items()
    }


def copy_seconds(site: Site, query: str, *, repeat: int) -> tuple[float, int]:
    """Median seconds to COPY the query's rows to this client, and their bytes."""
    times = []
    size = 0
    with site.connect() as conn:
        for _ in range(repeat + 1):
            started = time.monotonic()
            size = 0
            with conn.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT") as copy:
                for block in copy:
                    size += len(block)
            times.append(time.monotonic() - started)
    return statistics.median(times[1:]), size


FEED_ROWS = """
SELECT w.id, w.type, w.status, w.start, w.duration_minutes, s.change_id, s.position,
       s.planned_start, s.planned_minutes, c.title
FROM maintenance_maintenancewindow w
JOIN maintenance_scheduledchange s ON s.window_id = w.id
JOIN changes_changerequest c ON c.id = s.change_id
WHERE w.start >= now() - interval '60 days' AND w.start < now() + interval '180 days'
ORDER BY w.start, w.id, s.position
"""

# The feed as rendered when its cache misses (the first fetch after any audited write):
# the page timing above mostly hits the per-process cache, so the goal is judged on this.
FEED_COLD = """
import statistics, time
from django.contrib.auth import get_user_model
from maintenance.calendar_feed import feed_render
user = get_user_model().objects.get(username="operator")
body = feed_render(user=user)
times = []
for _ in range(REPEAT):
    started = time.monotonic()
    body = feed_render(user=user)
    times.append(time.monotonic() - started)
print(json.dumps({"median_ms": statistics.median(times) * 1000, "bytes": len(body)}))
"""

VERIFY = """
import resource, time
from portal.audit import verify_chain
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
report = verify_chain()
seconds = time.monotonic() - started
print(json.dumps({"seconds": seconds, "checked": report.checked, "intact": report.intact,
                  "rss_before_mb": before / 1024,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def verification(site: Site, *, repeat: int) -> dict[str, Any]:
    """The product's verification (what ``manage.py verify_audit_chain`` runs) must find
    the loaded chain intact, every row of it, or the timing means nothing."""
    with site.connect() as conn:
        (rows,) = conn.execute("SELECT count(*) FROM portal_auditevent").fetchone()
    if rows < site.info["audit_events"]:
        raise RuntimeError(f"{rows} audit rows, the loader wrote {site.info['audit_events']}")
    runs = [site.python(VERIFY) for _ in range(repeat)]
    for run in runs:
        if not run["intact"] or run["checked"] != rows:
            raise RuntimeError(f"the loaded chain does not verify ({rows} rows): {run}")
    copy, size = copy_seconds(site, "SELECT * FROM portal_auditevent", repeat=repeat)
    seconds = statistics.median(r["seconds"] for r in runs)
    return {
        "rows": runs[0]["checked"],
        "verify_s": round(seconds, 2),
        "copy_s": round(copy, 2),
        "copy_mb": round(size / 2**20, 1),
        "ratio": round(seconds / copy, 2),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "rss_before_mb": round(max(r["rss_before_mb"] for r in runs), 1),
    }


def throughput(site: Site, path: str, user: str, *, clients: int, seconds: float) -> dict:
    """``clients`` threads, each a signed-in browser on a kept connection, for ``seconds``."""
    lock = threading.Lock()
    times: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    barrier = threading.Barrier(clients)

    def browse() -> None:
        client = site.client(user)
        client.get(path)  # its connection and session, before the clock
        barrier.wait()
        while time.monotonic() < stop:
            answer = client.get(path)
            with lock:
                if answer.status == 200:
                    times.append(answer.seconds)
                else:
                    errors.append(f"{answer.status} {answer.error}")
        client.close()

    threads = [threading.Thread(target=browse, daemon=True) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ordered = sorted(times)
    return {
        "path": path,
        "clients": clients,
        "requests": len(times),
        "rps": round(len(times) / elapsed, 1),
        "median_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1) if ordered else None,
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
    }


def _load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def bench_scale(site: Site, args, log) -> dict[str, Any]:
    result: dict[str, Any] = {"changes": site.changes, "info": site.info, "pages": {}}
    specs = [spec for spec in PAGES if spec.key == "floor" or spec.key in args.pages]
    result["pages"] = time_pages(site, specs, repeat=args.repeat)
    for key, timing in result["pages"].items():
        log(f"    {key:13} {timing['median_ms']:8.1f} ms  {timing['path']}")
    result["load_average"] = _load_average()
    log(f"    load average {result['load_average']}")
    feed_copy, feed_bytes = copy_seconds(site, FEED_ROWS, repeat=args.repeat)
    result["feed_copy_ms"] = round(feed_copy * 1000, 1)
    result["feed_copy_bytes"] = feed_bytes
    cold = site.python(f"REPEAT = {max(3, args.repeat // 2)}\n" + FEED_COLD)
    result["feed_cold_ms"] = round(cold["median_ms"], 1)
    log(
        f"    COPY of the feed's rows {feed_copy * 1000:.1f} ms ({feed_bytes} bytes); "
        f"feed rendered uncached {cold['median_ms']:.1f} ms ({cold['bytes']} bytes)"
    )
    if not args.skip_verify:
        result["verify"] = verification(site, repeat=args.verify_repeat)
        log(f"    verification {result['verify']}")
    if not args.skip_throughput:
        detail = f"/changes/{site.info['detail_change']}/"
        result["throughput"] = {
            name: throughput(site, path, "requester", clients=args.clients, seconds=args.seconds)
            for name, path in (("floor", "/_bench/floor/"), ("changes", "/changes/"),
                               ("detail", detail))
        }  # fmt: skip
        log(f"    throughput {result['throughput']}")
    return result


def table(results: list[dict[str, Any]]) -> str:
    by_scale = {r["changes"]: r for r in results}
    small, large = min(by_scale), max(by_scale)
    head = (
        f"| page | at {small:,} changes | at {large:,} | x floor at {large:,} "
        f"| x own at {small:,} |"
    )
    lines = [head, "|---|---|---|---|---|"]
    floor = by_scale[large]["pages"]["floor"]["median_ms"]
    for spec in PAGES:
        if spec.key not in by_scale[large]["pages"]:
            continue
        a = by_scale[small]["pages"][spec.key]["median_ms"]
        b = by_scale[large]["pages"][spec.key]["median_ms"]
        lines.append(f"| {spec.label} | {a:.1f} ms | {b:.1f} ms | {b / floor:.2f} | {b / a:.2f} |")
    lines.append("")
    for scale in sorted(by_scale):
        r = by_scale[scale]
        lines.append(f"- {scale:,} changes: load average during the pages {r['load_average']}")
        if "feed" in r["pages"]:
            feed = r["pages"]["feed"]["median_ms"]
            cold, copy = r["feed_cold_ms"], r["feed_copy_ms"]
            lines.append(
                f"- {scale:,} changes: feed rendered uncached {cold:.1f} ms vs COPY of its "
                f"rows {copy:.1f} ms = {cold / copy:.2f}x (served from its cache: "
                f"{feed:.1f} ms = {feed / copy:.2f}x)"
            )
        if "verify" in r:
            v = r["verify"]
            lines.append(
                f"- {scale:,} changes: verify_audit_chain over {v['rows']:,} rows "
                f"{v['verify_s']} s vs COPY {v['copy_s']} s ({v['copy_mb']} MB) = "
                f"{v['ratio']}x; peak RSS {v['peak_rss_mb']} MB "
                f"(the process had {v['rss_before_mb']} MB before)"
            )
        if "throughput" in r:
            t = r["throughput"]
            floor_rps = t["floor"]["rps"]
            for name in ("floor", "changes", "detail"):
                x = t[name]
                lines.append(
                    f"- {scale:,} changes: {x['clients']} clients on {name} ({x['path']}): "
                    f"{x['rps']} req/s ({x['rps'] / floor_rps:.0%} of the floor), median "
                    f"{x['median_ms']} ms, p95 {x['p95_ms']} ms, {x['errors']} errors"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="1000,100000")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--verify-repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--pages",
        default=",".join(spec.key for spec in PAGES),
        help="the pages to time (comma-separated keys; the floor is always timed)",
    )
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="at the end, keep the loaded databases until interrupted (for EXPLAIN)",
    )
    args = parser.parse_args(argv)
    args.pages = set(args.pages.split(","))
    if unknown := args.pages - {spec.key for spec in PAGES}:
        parser.error(f"unknown pages: {', '.join(sorted(unknown))}")
    django_setup()
    from tests.services import PgCluster, RedisServer

    def log(message: str) -> None:
        print(message, flush=True)

    root = scratch_root()
    cluster = PgCluster(settings=CLUSTER_SETTINGS).start()
    redis = RedisServer().start()
    log(f"cluster on port {cluster.port}, redis on {redis.port}, files in {root}")
    results = []
    try:
        for changes in [int(s) for s in args.scales.split(",")]:
            log(f"scale {changes:,} changes")
            site = Site(cluster=cluster, redis=redis, changes=changes, root=root)
            site.load(log)
            site.serve()
            try:
                results.append(bench_scale(site, args, log))
            finally:
                site.stop()
        if len(results) > 1:
            print()
            print(table(results))
        print()
        print(json.dumps(results), flush=True)
        if args.keep:
            _hold(log, cluster)
    finally:
        cluster.remove()
        redis.remove()
        shutil.rmtree(root, ignore_errors=True)


def _hold(log, cluster) -> None:
    """The throwaway services end with this process, so keeping them means waiting."""
    log(f"kept: {cluster.url('bench_<changes>')} until interrupted (kill {os.getpid()})")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
