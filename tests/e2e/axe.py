"""axe-core in the browser tests: the vendored engine (``vendor/axe.min.js``, see the
README there), loaded into a page without touching the portal's CSP, and its findings in
a form a failing assertion can print.

By default every rule axe enables runs: WCAG 2.0, 2.1 and 2.2 at levels A and AA (what
the portal is held to) and axe's best practices; the tests fail on any violation."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, Page

AXE_VERSION = "4.14.1"
AXE_SOURCE = Path(__file__).with_name("vendor") / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def install_axe(context: BrowserContext) -> None:
    """Load axe into every document of the context. An init script runs outside the
    page's CSP (an injected <script> would be refused, and logged as a violation)."""
    context.add_init_script(path=str(AXE_SOURCE))


def axe_violations(page: Page, *, tags: list[str] | None = None) -> list[dict]:
    """Violations on the page as it is now; ``tags`` limits the rules (``WCAG_AA``)."""
    assert page.evaluate("typeof window.axe") == "object", "axe-core is not loaded"
    assert page.evaluate("axe.version") == AXE_VERSION
    options: dict = {"resultTypes": ["violations"]}
    if tags:
        options["runOnly"] = {"type": "tag", "values": tags}
    return page.evaluate("(options) => axe.run(document, options)", options)["violations"]


def describe(violations: list[dict]) -> list[str]:
    """One line per failing element: rule, impact, selector and axe's summary."""
    lines = []
    for violation in violations:
        for node in violation["nodes"]:
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(
                f"{violation['id']} ({violation['impact']}) {' '.join(map(str, node['target']))}: "
                f"{summary[:240]}"
            )
    return lines
