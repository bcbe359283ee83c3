"""axe-core in the browser tests: the accessibility violations of the page a Playwright ``page`` shows.

axe-core 4.12 comes bundled with ``axe-playwright-python`` (requirements-test.txt), injected through
Playwright's evaluate, which the pages' strict Content-Security-Policy does not block."""

from __future__ import annotations

from typing import Any

SERIOUS = ("serious", "critical")


def axe_violations(page: Any, impacts: tuple[str, ...] = SERIOUS) -> list[dict[str, Any]]:
    """The violations of at least ``impacts`` on the current page, each reduced to its rule, impact, help
    and the first few offending nodes (a readable assertion message)."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"][:5]]} for v in found if v["impact"] in impacts]
