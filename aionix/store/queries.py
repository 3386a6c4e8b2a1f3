"""Named SQL queries: `-- name: foo` blocks in `sql/<dialect>/<file>.sql`, addressed as
`"<file>.foo"`; and numbered migrations in `migrations/<dialect>/NNNN_name.sql`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME_RE = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.MULTILINE)


class UnknownQuery(KeyError):
    pass


def _parse(file_stem: str, text: str, into: dict[str, str]) -> None:
    parts = _NAME_RE.split(text)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip().rstrip(";").strip()
        key = f"{file_stem}.{name}"
        if key in into:
            raise ValueError(f"query {key} is defined twice")
        into[key] = sql


def load_queries(dialect: str) -> dict[str, str]:
    """Every named query of a dialect."""
    queries: dict[str, str] = {}
    root = resources.files("aionix.store").joinpath("sql", dialect)
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            _parse(entry.name[:-4], entry.read_text(encoding="utf-8"), queries)
    return queries


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """Numbered migrations in order; numbers must be unique."""
    root = resources.files("aionix.store").joinpath("migrations", dialect)
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        m = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", entry.name)
        if not m:
            continue
        version = int(m.group(1))
        if version in found:
            raise ValueError(f"two migrations numbered {version}")
        found[version] = Migration(version, m.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]
