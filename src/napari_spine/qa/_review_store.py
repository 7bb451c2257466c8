"""Where review state lives: one SQLite file, or a PostgreSQL server a team shares.

Both stores run a *transaction function* ``fn(tx)`` and commit it whole or not at all;
``tx.execute(sql, params)`` takes ``?`` placeholders and returns a cursor whose rows are
read by column name. The SQL the review queue uses is the same on both, apart from the
row locks (:attr:`for_update`, :attr:`skip_locked`) and the column that keeps insertion
order (:attr:`seq`).

PostgreSQL: one connection per thread and process, kept open; a transaction that loses
its connection before the commit is retried once on a new connection, a lost commit is
reported as such (it may or may not have been saved), and serialization failures and
deadlocks are retried. Passwords are never part of a message: :func:`redact` is what the
panel, the logs and the errors show.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import SpineIOError
from ._review_schema import SCHEMA_VERSION, ddl_v1, migrations

__all__ = ["ReviewConflict", "ReviewDBError", "has_password", "is_url", "open_store", "redact"]

T = TypeVar("T")
_URL = re.compile(r"^(postgres|postgresql)://", re.I)


class ReviewDBError(SpineIOError, RuntimeError):
    """The review database cannot be used (corrupt, locked, unreachable, newer); names it."""


class ReviewConflict(RuntimeError):
    """Someone else changed the case since it was read: reload and apply again."""


def is_url(location: str | os.PathLike) -> bool:
    """Whether ``location`` names a server (``postgresql://…``) rather than a file."""
    return isinstance(location, str) and "://" in location


def _password(url: str) -> str | None:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return parts.password or query.get("password")


def has_password(location: str | os.PathLike) -> bool:
    """Whether a server URL carries a password (keep it in ``~/.pgpass`` or PGPASSWORD)."""
    return is_url(location) and bool(_password(str(location)))


def redact(url: str) -> str:
    """The URL with its password (in the user part or as ``?password=``) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), parts.fragment))


def open_store(location: str | os.PathLike, timeout: float):
    """The store for a file path or a ``postgresql://`` URL, brought up to the current schema."""
    if is_url(location):
        if not _URL.match(str(location)):
            raise ReviewDBError(f"{redact(str(location))}: not a review database location (a file "
                                "path or a postgresql://user@host:port/database URL)")
        store: Any = PostgresStore(str(location), timeout)
    else:
        store = SQLiteStore(Path(location), timeout)
    store.run(lambda tx: upgrade(tx, store), write=True, setup=True)
    return store


def upgrade(tx, store) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` (inside the caller's transaction); a
    database without tables gets version 1 and its migrations, a version-1 file (no
    ``schema_meta``) is upgraded in place, a newer one is refused."""
    tables = store.tables(tx)
    if "schema_meta" in tables:
        row = tx.execute("SELECT value FROM schema_meta WHERE name='version'").fetchone()
        version = int(row["value"]) if row else 1
    else:
        if "cases" not in tables:
            for stmt in ddl_v1(store.kind):
                tx.execute(stmt)
        version = 1
    if version > SCHEMA_VERSION:
        raise ReviewDBError(f"{store.where}: review database schema version {version} is newer than "
                            f"this napari-spine knows ({SCHEMA_VERSION}); update napari-spine. The "
                            "database was not changed.")
    for target, statements in sorted(migrations(store.kind).items()):
        if target <= version:
            continue
        for stmt in statements:
            tx.execute(stmt)
        tx.execute("INSERT INTO schema_meta(name, value) VALUES ('version', ?) ON CONFLICT(name) "
                   "DO UPDATE SET value=excluded.value", (str(target),))
        version = target
    return version


class SQLiteStore:
    """One SQLite file; a connection per transaction (safe across threads and forks)."""

    kind = "sqlite"
    for_update = ""
    skip_locked = ""
    seq = "rowid"
    snapshot = ""  # a read transaction already sees one snapshot

    def __init__(self, path: Path, timeout: float):
        self.path = path
        self.where = str(path)
        self.timeout = timeout
        if path.exists() and path.stat().st_size > 0:
            with open(path, "rb") as f:
                if f.read(16) != b"SQLite format 3\x00":
                    raise ReviewDBError(f"{path}: not an SQLite database; it was left untouched")

    def tables(self, tx) -> set[str]:
        """The names of the database's tables."""
        return {r["name"] for r in tx.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def run(self, fn: Callable[[Any], T], write: bool = False, setup: bool = False) -> T:
        """Run ``fn(connection)`` in one transaction (``BEGIN IMMEDIATE`` when it writes)."""
        con = None
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            con.row_factory = sqlite3.Row
            if not setup:  # WAL is switched on once the schema check has passed
                con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                out = fn(con)
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            if setup:
                con.execute("PRAGMA journal_mode=WAL")
            return out
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise ReviewDBError(f"{self.path}: database is locked by another program ({exc})") from exc
            raise ReviewDBError(f"{self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise ReviewDBError(f"{self.path}: cannot use the review database ({exc})") from exc
        finally:
            if con is not None:
                con.close()

    def close(self) -> None:
        """Nothing is kept open between transactions."""


class _PgTx:
    """``execute`` with ``?`` placeholders on a psycopg cursor."""

    def __init__(self, cur):
        self.cur = cur

    def execute(self, sql: str, params: tuple | list = ()):
        self.cur.execute(sql.replace("?", "%s"), tuple(params))
        return self.cur


class PostgresStore:
    """A PostgreSQL database (psycopg 3), shared by a team; row locks instead of a file lock."""

    kind = "postgres"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    seq = "id"
    snapshot = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
    path = None
    max_conflict_retries = 8

    def __init__(self, url: str, timeout: float):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ReviewDBError(f"{redact(url)}: a PostgreSQL review database needs psycopg; "
                                "install napari-spine[team]") from None
        self.url = url
        self.where = redact(url)
        self.timeout = timeout
        self._secret = _password(url)
        self._local = threading.local()

    def _scrub(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split())
        return text.replace(self._secret, "***") if self._secret else text

    def tables(self, tx) -> set[str]:
        """The names of the tables in the connection's schema."""
        rows = tx.execute("SELECT table_name AS name FROM information_schema.tables "
                          "WHERE table_schema = current_schema()")
        return {r["name"] for r in rows}

    def _connection(self):
        import psycopg
        from psycopg.rows import dict_row

        con = getattr(self._local, "con", None)
        if con is not None and self._local.pid == os.getpid() and not (con.closed or con.broken):
            return con
        try:
            con = psycopg.connect(self.url, connect_timeout=max(2, int(self.timeout)), row_factory=dict_row,
                                  application_name="napari-spine",
                                  options=f"-c lock_timeout={int(self.timeout * 1000)}")
        except psycopg.Error as exc:
            raise ReviewDBError(f"{self.where}: cannot connect to the review server ({self._scrub(exc)})") from None
        self._local.con, self._local.pid = con, os.getpid()
        return con

    def _drop(self, con) -> None:
        self._local.con = None
        try:
            con.close()
        except Exception:  # noqa: BLE001 - the connection is gone anyway
            pass

    def _commit(self, con) -> None:
        con.commit()

    # long: one retry loop with its four outcomes (done, conflict, lost connection, error)
    def run(self, fn: Callable[[Any], T], write: bool = False, setup: bool = False) -> T:
        """Run ``fn(tx)`` in one transaction; see the module text for the retries."""
        import psycopg
        from psycopg import errors

        lost = conflicts = 0
        while True:
            con = self._connection()
            try:
                with con.cursor() as cur:
                    if setup:  # one migration at a time, across every workstation
                        cur.execute("SELECT pg_advisory_xact_lock(7470727)")
                    out = fn(_PgTx(cur))
            except errors.TransactionRollback as exc:  # serialization failure, deadlock
                self._rollback(con)
                conflicts += 1
                if conflicts > self.max_conflict_retries:
                    raise ReviewDBError(f"{self.where}: the change kept conflicting with other "
                                        f"reviewers' ({self._scrub(exc)}); nothing was saved") from None
                continue
            except psycopg.OperationalError as exc:
                if not (con.closed or con.broken):
                    self._rollback(con)  # a connection that fails to roll back is lost too
                if not (con.closed or con.broken):
                    if isinstance(exc, errors.LockNotAvailable):
                        raise ReviewDBError(f"{self.where}: the case is locked by another program "
                                            f"({self._scrub(exc)})") from None
                    raise ReviewDBError(f"{self.where}: {self._scrub(exc)}") from None
                self._drop(con)
                if lost:
                    raise ReviewDBError(f"{self.where}: lost the connection to the review server "
                                        f"again ({self._scrub(exc)}); nothing was saved") from None
                lost += 1
                continue
            except psycopg.Error as exc:
                self._rollback(con)
                raise ReviewDBError(f"{self.where}: {self._scrub(exc)}") from None
            except BaseException:
                self._rollback(con)
                raise
            try:
                self._commit(con)
            except psycopg.Error as exc:
                self._drop(con)
                raise ReviewDBError(f"{self.where}: the connection was lost while saving "
                                    f"({self._scrub(exc)}); the change may or may not have been "
                                    "saved: reload the case to see") from None
            return out

    def _rollback(self, con) -> None:
        try:
            con.rollback()
        except Exception:  # noqa: BLE001 - a broken connection is dropped
            self._drop(con)
            if not con.closed:
                con.close()

    def close(self) -> None:
        """Close this thread's connection."""
        con = getattr(self._local, "con", None)
        if con is not None and self._local.pid == os.getpid():
            self._drop(con)
