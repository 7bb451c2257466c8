"""The review database's tables, per back end, and their forward migrations.

Version 1 is the schema of the first SQLite review files (no version table); version 2
adds ``schema_meta`` (the version), who flagged a level and when, and indexes on the
per-case tables. A database is brought up to :data:`SCHEMA_VERSION` in one transaction
when it is opened; one written by a newer napari-spine is refused, untouched.
"""

from __future__ import annotations

__all__ = ["SCHEMA_VERSION", "ddl_v1", "migrations"]

SCHEMA_VERSION = 2

# PostgreSQL's REAL is 4 bytes (about 100 s resolution on epoch seconds): times there are
# DOUBLE PRECISION. History and metrics get a sequence column there, since PostgreSQL has
# no rowid to keep the order of actions.
_TYPES = {"sqlite": {"time": "REAL", "seq": ""},
          "postgres": {"time": "DOUBLE PRECISION", "seq": "id BIGSERIAL PRIMARY KEY,"}}

_V1 = """
CREATE TABLE IF NOT EXISTS cases (
    case_key TEXT PRIMARY KEY,
    dataset TEXT NOT NULL DEFAULT '',
    case_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'to do',
    reviewer TEXT,
    claimed_by TEXT,
    claimed_at {time},
    updated_at {time},
    comment TEXT NOT NULL DEFAULT '',
    triage {time} NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS levels (
    case_key TEXT NOT NULL REFERENCES cases(case_key),
    structure_id INTEGER NOT NULL,
    flag INTEGER NOT NULL DEFAULT 0,
    comment TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (case_key, structure_id)
);
CREATE TABLE IF NOT EXISTS metrics (
    {seq}
    case_key TEXT NOT NULL REFERENCES cases(case_key),
    created_at {time} NOT NULL,
    reviewer TEXT,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    {seq}
    case_key TEXT NOT NULL,
    at {time} NOT NULL,
    reviewer TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cases_queue ON cases(status, triage DESC);
"""

_V2 = """
CREATE TABLE IF NOT EXISTS schema_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
ALTER TABLE levels ADD COLUMN reviewer TEXT;
ALTER TABLE levels ADD COLUMN updated_at {time};
CREATE INDEX IF NOT EXISTS history_case ON history(case_key);
CREATE INDEX IF NOT EXISTS metrics_case ON metrics(case_key, created_at);
"""


def _statements(script: str, kind: str) -> list[str]:
    text = script.format(**_TYPES[kind])
    return [s.strip() for s in text.split(";") if s.strip()]


def ddl_v1(kind: str) -> list[str]:
    """The statements that create a version-1 database on ``kind`` ("sqlite", "postgres")."""
    return _statements(_V1, kind)


def migrations(kind: str) -> dict[int, list[str]]:
    """``{version reached: statements}`` from version 1 onwards."""
    return {2: _statements(_V2, kind)}
