"""The store is the only code that speaks SQL: no ``sqlite3``, no SQLAlchemy and no SQL text outside
gateway/store/. Tests reach the database through the store's API, SQLAlchemy (engine and schema tests) or
tests/storehelp.py, never ``sqlite3`` directly."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL = re.compile(r"""["'](SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX|TRIGGER))\b""")
DRIVERS = re.compile(r"^\s*(import sqlite3|from sqlite3|import sqlalchemy|from sqlalchemy)\b", re.M)
PENDING: set[str] = set()


def _offenders(files: list[Path], allowed: set[str]) -> list[str]:
    out = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel in allowed:
            continue
        text = path.read_text(encoding="utf-8")
        if DRIVERS.search(text) or SQL.search(text):
            out.append(rel)
    return out


def test_no_sql_outside_the_store() -> None:
    files = [p for p in (ROOT / "gateway").rglob("*.py") if "store" not in p.relative_to(ROOT / "gateway").parts]
    assert files, "no sources found"
    assert _offenders(files, PENDING) == []


def test_tests_reach_the_database_only_through_their_helper() -> None:
    files = [p for p in (ROOT / "tests").glob("*.py") if p.name != "storehelp.py"]
    assert [p.name for p in files if re.search(r"^\s*(import|from) sqlite3\b", p.read_text(encoding="utf-8"), re.M)] == []
    direct = [p.name for p in files if re.search(r"\.db\.(execute|query|query_one)\(", p.read_text(encoding="utf-8"))]
    assert direct == []
