"""docs/architecture.md maps the tree: every module of gateway/ is named there, and no module it names is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"


def _sections() -> dict[str, str]:
    """Each ``### `gateway/<pkg>/` `` section's text by package path (``gateway/`` for the top level)."""
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### `(gateway/[\w/]*)`.*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_module_is_on_the_map():
    sections = _sections()
    missing = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        pkg = rel.split("/")[1] if rel.count("/") > 1 else ""
        section = sections.get(f"gateway/{pkg}/" if pkg else "gateway/", "")
        inner = rel.split("/", 2)[2] if pkg else rel.split("/", 1)[1]
        if f"`{inner}`" not in section and f"`{path.name}`" not in section and f"`{inner.split('/')[0]}/" not in section:
            missing.append(rel)
    assert missing == [], f"docs/architecture.md does not name: {missing}"


def test_no_module_on_the_map_is_gone():
    gone = []
    for pkg, section in _sections().items():
        for name in re.findall(r"^\| `([\w/]+\.py)`", section, re.M):
            if not (ROOT / pkg / name).exists():
                gone.append(pkg + name)
    assert gone == []
