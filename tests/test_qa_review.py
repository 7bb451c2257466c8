"""Review database on both back ends (SQLite file, PostgreSQL server): claims, optimistic
updates, concurrency, crashes, lost connections, bad locations, schema versions."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest

from napari_spine.qa.review import ReviewConflict, ReviewDB, ReviewDBError

WORKERS = [sys.executable, "-m", "napari_spine.testing.review_workers"]


def _db(location, n=20):
    db = ReviewDB(location)
    db.add_cases((f"ds/c{i:02d}", "ds", f"c{i:02d}", float(i)) for i in range(n))
    return db


def test_queue_claim_update_and_levels(review_location):
    db = _db(review_location, 3)
    assert [c.case_key for c in db.queue()] == ["ds/c02", "ds/c01", "ds/c00"]  # most suspicious first
    a = db.claim_next("ana")
    b = db.claim_next("ben")
    assert (a.case_key, b.case_key) == ("ds/c02", "ds/c01") and a.status == "in review"
    with pytest.raises(ReviewConflict, match="ana"):
        db.claim("ds/c02", "ben")
    done = db.update(a.case_key, a.version, reviewer="ana", status="approved", comment="fine", release=True)
    assert done.status == "approved" and done.claimed_by is None and done.version == a.version + 1
    with pytest.raises(ReviewConflict, match="reload"):
        db.update(a.case_key, a.version, reviewer="ben", status="needs correction")  # stale version
    db.set_level("ds/c01", 22, flag=True, comment="L3 undersegmented", reviewer="ben")
    db.set_level("ds/c01", 23, flag=False)
    db.set_level("ds/c01", 22, flag=True, comment="L3 under", reviewer="ben")  # replaces
    assert db.levels("ds/c01") == {22: (True, "L3 under"), 23: (False, "")}
    db.save_metrics("ds/c01", {"dice": {"22": 0.8}})
    db.save_metrics("ds/c01", {"dice": {"22": 0.9}})
    assert db.latest_metrics("ds/c01") == {"dice": {"22": 0.9}}
    assert db.latest_metrics("ds/c00") is None
    with pytest.raises(ValueError, match="status"):
        db.update("ds/c00", 0, reviewer="x", status="done")
    with pytest.raises(KeyError, match="nope"):
        db.get("ds/nope")
    hist = db.history("ds/c02")
    assert [(r, a) for _, r, a, _ in hist] == [("ana", "claim"), ("ana", "update")]
    assert json.loads(hist[1][3]) == {"status": "approved", "comment": "fine"}
    assert hist[0][0] <= hist[1][0] and abs(hist[1][0] - time.time()) < 60  # full-precision times
    # state survives reopening
    db.close()
    again = ReviewDB(review_location)
    assert again.get("ds/c02").status == "approved" and again.get("ds/c02").comment == "fine"
    # re-adding cases keeps their review state
    again.add_cases([("ds/c02", "ds", "c02", 9.5, {"case_id": "c02"})])
    assert again.get("ds/c02").status == "approved" and again.get("ds/c02").triage == 9.5
    assert again.source("ds/c02") == {"case_id": "c02"}
    again.add_cases([("ds/c02", "ds", "c02", 1.0)])  # no source given: the old one stays
    assert again.source("ds/c02") == {"case_id": "c02"} and again.get("ds/c02").triage == 1.0


def test_eight_processes_share_a_queue(review_location, record_property):
    """8 processes claim and update the same 20 cases for 20 s: no case is claimed twice,
    no update is lost, no lock or serialization error escapes (a worker would exit non-zero)."""
    seconds = float(os.environ.get("NAPARI_SPINE_REVIEW_STRESS_S", "20"))
    db = _db(review_location)
    t0 = time.monotonic()
    procs = [subprocess.Popen(WORKERS + ["churn", review_location, f"r{i}", str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    outs = [p.communicate(timeout=seconds + 240) for p in procs]
    wall = time.monotonic() - t0
    assert [p.returncode for p in procs] == [0] * 8, [err[-2000:] for _, err in outs if err]
    claims = [json.loads(out) for out, _ in outs]
    n = sum(len(c) for c in claims)
    assert n > 8 and all(claims)  # every worker got cases
    total = sum(int(c.comment) for c in db.queue() if c.comment)
    assert total == n  # no lost update
    seen = [tuple(c) for each in claims for c in each]
    assert len(seen) == len(set(seen))  # no version of a case was claimed twice
    for case in db.queue():  # per case: claim, update by the same reviewer, claim, ...
        hist = db.history(case.case_key)
        assert [a for _, _, a, _ in hist] == ["claim", "update"] * (len(hist) // 2) and len(hist) % 2 == 0
        assert all(hist[i][1] == hist[i + 1][1] for i in range(0, len(hist), 2))
        assert case.version == len(hist) and case.claimed_by is None
    rate = n / seconds  # every worker claims for ``seconds``; start-up is not counted
    record_property("claims_per_s", round(rate, 1))
    print(f"\n{db.kind}: {n} claims+updates by 8 processes in {seconds:.0f} s (wall {wall:.1f} s) = "
          f"{rate:.1f} claims/s")


def test_corrupt_file_is_refused_and_kept(tmp_path):
    bad = tmp_path / "review.sqlite"
    bad.write_bytes(b"this is not a database" * 10)
    with pytest.raises(ReviewDBError, match=r"review\.sqlite: not an SQLite database"):
        ReviewDB(bad)
    assert bad.read_bytes() == b"this is not a database" * 10


def test_locked_database_gives_a_clear_error(tmp_path):
    db = _db(tmp_path / "review.sqlite", 2)
    locker = sqlite3.connect(db.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        db.timeout = 0.2
        with pytest.raises(ReviewDBError, match="locked"):
            db.claim_next("ana")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert db.claim_next("ana") is not None  # nothing was lost


def test_a_locked_case_on_the_server(pg_cluster):
    """A row another program holds: claim_next passes it by, an update of it times out
    with a clear error, and nothing is written."""
    import psycopg

    url = pg_cluster.new_database()
    db = _db(url, 2)
    held = db.claim("ds/c01", "ana")
    locker = psycopg.connect(url)
    locker.execute("SELECT * FROM cases WHERE case_key='ds/c01' FOR UPDATE")
    try:
        db.timeout = 0.3
        with pytest.raises(ReviewDBError, match="locked by another program"):
            db.update("ds/c01", held.version, reviewer="ana", comment="x")
        assert db.claim_next("ben").case_key == "ds/c00"  # the locked row is skipped, not waited for
    finally:
        locker.rollback()
        locker.close()
    assert db.get("ds/c01").comment == "" and db.get("ds/c01").version == held.version
    assert db.update("ds/c01", held.version, reviewer="ana", comment="x").comment == "x"


def test_a_crashed_reviewers_claim_is_offered_again_once_stale(review_location, monkeypatch):
    import napari_spine.qa.review as review

    clock = {"t": 1_000_000.0}
    monkeypatch.setattr(review.time, "time", lambda: clock["t"])  # time is injected, not slept
    db = _db(review_location, n=2)
    gone = db.claim_next("ana")  # ana's program dies with the case claimed, 'in review'
    assert gone.case_key == "ds/c01" and gone.status == "in review"
    clock["t"] += 600
    assert db.claim_next("ben", stale_after_s=3600).case_key == "ds/c00"  # fresh claim: skipped
    with pytest.raises(ReviewConflict, match="being reviewed by ana"):
        db.take_over("ds/c01", "cy", stale_after_s=3600)
    clock["t"] += 3600
    again = db.claim_next("cy", stale_after_s=3600)
    assert again is not None and again.case_key == "ds/c01" and again.claimed_by == "cy"
    with pytest.raises(ReviewConflict, match="ana does not hold this case.*cy does"):
        db.update("ds/c01", again.version, reviewer="ana", status="approved")
    done = db.update("ds/c01", again.version, reviewer="cy", status="approved", release=True)
    assert done.status == "approved" and db.claim_next("dee", stale_after_s=3600) is None
    clock["t"] += 7200
    took = db.take_over("ds/c00", "dee", stale_after_s=3600)  # ben's claim is stale now
    assert took.claimed_by == "dee" and db.history("ds/c00")[-1][2:] == ("take over", "from ben")


def test_only_the_holder_may_update(review_location):
    db = _db(review_location, n=3)
    case = db.get("ds/c00")
    with pytest.raises(ReviewConflict, match="nobody has claimed it"):
        db.update("ds/c00", case.version, reviewer="eve", status="approved")
    held = db.claim("ds/c00", "ana")
    with pytest.raises(ReviewConflict, match="eve does not hold this case"):
        db.update("ds/c00", held.version, reviewer="eve", comment="mine now")
    assert db.get("ds/c00").comment == "" and db.get("ds/c00").version == held.version
    decided = db.decide("ds/c01", "eve", "needs correction", "L4 missing")
    assert (decided.status, decided.claimed_by, decided.comment) == ("needs correction", None, "L4 missing")


def _wait_for(predicate, what: str, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_process_killed_mid_transaction_leaves_a_consistent_database(review_location, tmp_path, request):
    db = _db(review_location, n=3)
    marker = tmp_path / "in-transaction"
    proc = subprocess.Popen(WORKERS + ["hang", review_location, "ana", "ds/c01", str(marker)],
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: marker.exists() or proc.poll() is not None, "the worker's transaction")
        assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    if db.kind == "postgres":  # the server rolls the dead client's transaction back
        cluster, dbname = request.getfixturevalue("pg_cluster"), review_location.rsplit("/", 1)[1]
        _wait_for(lambda: not cluster.admin(f"SELECT pid FROM pg_stat_activity WHERE datname='{dbname}' "
                                            "AND state LIKE 'idle in transaction%'"), "the dead client's backend")
        orphans = cluster.admin("SELECT count(*) FROM history h LEFT JOIN cases c USING (case_key) "
                                "WHERE c.case_key IS NULL", dbname)
        assert orphans == [(0,)]
    else:
        with sqlite3.connect(db.path) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    case = db.get("ds/c01")
    assert case.comment == "" and case.claimed_by == "ana" and case.status == "in review"
    assert [a for _, _, a, _ in db.history("ds/c01")] == ["claim"]  # the half change is gone whole
    assert case.version == 1
    ben = db.claim_next("ben", stale_after_s=3600)
    assert ben.case_key == "ds/c02"  # ana's claim of c01 is recent: kept
    db.update("ds/c02", ben.version, reviewer="ben", status="approved", release=True)
    back = db.claim_next("cy", stale_after_s=0)  # once stale, the dead reviewer's case comes back
    assert back is not None and back.case_key == "ds/c01" and back.claimed_by == "cy"


# -- the server: lost connections, bad locations ---------------------------------------
def _terminate(cluster, dbname: str) -> int:
    """End the review connections to a database, as a server restart or a network cut does;
    returns once they are gone."""
    who = f"datname='{dbname}' AND application_name='napari-spine' AND pid <> pg_backend_pid()"
    n = len(cluster.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {who}"))
    _wait_for(lambda: not cluster.admin(f"SELECT pid FROM pg_stat_activity WHERE {who}"), "the backends to end")
    return n


def test_a_dropped_connection_is_retried_once(pg_cluster):
    url = pg_cluster.new_database()
    dbname = url.rsplit("/", 1)[1]
    db = _db(url, 2)
    assert _terminate(pg_cluster, dbname) == 1  # between two calls: the next one reconnects
    c = db.claim_next("ana")
    assert c.case_key == "ds/c01"
    calls = []
    real = db._store._commit

    def fn(t):  # the server drops us in the middle of the first attempt
        t.execute("UPDATE cases SET comment=comment || 'x' WHERE case_key='ds/c01'")
        calls.append(1)
        if len(calls) == 1:
            _terminate(pg_cluster, dbname)
        t.execute(
            "INSERT INTO history(case_key, at, reviewer, action, detail) VALUES ('ds/c01', 0, 'ana', 'note', '')")
    db._run(fn, write=True)
    assert len(calls) == 2 and db.get("ds/c01").comment == "x"  # written once, not twice
    assert [a for _, _, a, _ in db.history("ds/c01")] == ["claim", "note"]

    def always(t):
        t.execute("UPDATE cases SET comment='lost' WHERE case_key='ds/c01'")
        _terminate(pg_cluster, dbname)
        t.execute("SELECT 1")
    with pytest.raises(ReviewDBError, match="lost the connection.*nothing was saved"):
        db._run(always, write=True)
    assert db.get("ds/c01").comment == "x"

    import psycopg

    def commit_fails(con):
        con.rollback()
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    db._store._commit = commit_fails
    with pytest.raises(ReviewDBError, match="may or may not have been saved"):
        db.update("ds/c01", c.version, reviewer="ana", comment="y")
    db._store._commit = real
    assert db.update("ds/c01", c.version, reviewer="ana", comment="y").comment == "y"


def test_bad_server_locations_give_clear_errors_without_the_password(pg_cluster):
    pw = "Hunter2-not-the-password"
    with pytest.raises(ReviewDBError) as e:
        ReviewDB(pg_cluster.url("postgres", password=pw))
    assert "password authentication failed" in str(e.value) and pw not in str(e.value)
    assert "reviewer:***@" in str(e.value)
    with pytest.raises(ReviewDBError) as e:
        ReviewDB(pg_cluster.url("postgres") + f"?password={pw}&sslmode=disable")
    assert pw not in str(e.value) and "password=***" in str(e.value)
    with pytest.raises(ReviewDBError, match='database "no_such_db" does not exist'):
        ReviewDB(pg_cluster.url("no_such_db"))
    with pytest.raises(ReviewDBError, match="not a review database location"):
        ReviewDB(f"mysql://reviewer:{pw}@127.0.0.1/x")
    from napari_spine.testing.postgres import _free_port

    t0 = time.monotonic()
    with pytest.raises(ReviewDBError, match="cannot connect to the review server.*refused") as e:
        ReviewDB(f"postgresql://reviewer:{pw}@127.0.0.1:{_free_port()}/x", timeout=3)  # server down
    assert pw not in str(e.value) and time.monotonic() - t0 < 10
    db = ReviewDB(pg_cluster.new_database())
    assert db.path is None and db.kind == "postgres" and "@127.0.0.1:" in db.where


def test_redact_and_has_password():
    from napari_spine.qa.review import has_password, redact

    assert redact("postgresql://ana:pa%40ss@db.example:5432/rev") == "postgresql://ana:***@db.example:5432/rev"
    assert redact("postgresql://ana@db/rev?password=x&sslmode=require") == \
        "postgresql://ana@db/rev?password=***&sslmode=require"
    assert redact("postgresql://db/rev") == "postgresql://db/rev"
    assert has_password("postgresql://ana:x@db/rev") and has_password("postgresql://db/rev?password=x")
    assert not has_password("postgresql://ana@db/rev") and not has_password("/tmp/review.sqlite")


# -- schema versions ---------------------------------------------------------------------
_V1_FILE = """
CREATE TABLE cases (case_key TEXT PRIMARY KEY, dataset TEXT NOT NULL DEFAULT '', case_id TEXT NOT NULL
  DEFAULT '', status TEXT NOT NULL DEFAULT 'to do', reviewer TEXT, claimed_by TEXT, claimed_at REAL,
  updated_at REAL, comment TEXT NOT NULL DEFAULT '', triage REAL NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT '{}');
CREATE TABLE levels (case_key TEXT NOT NULL REFERENCES cases(case_key), structure_id INTEGER NOT NULL,
  flag INTEGER NOT NULL DEFAULT 0, comment TEXT NOT NULL DEFAULT '', PRIMARY KEY (case_key, structure_id));
CREATE TABLE metrics (case_key TEXT NOT NULL REFERENCES cases(case_key), created_at REAL NOT NULL,
  reviewer TEXT, payload TEXT NOT NULL);
CREATE TABLE history (case_key TEXT NOT NULL, at REAL NOT NULL, reviewer TEXT, action TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '');
CREATE INDEX cases_queue ON cases(status, triage DESC);
INSERT INTO cases(case_key, dataset, case_id, status, reviewer, comment, triage, version)
  VALUES ('ds/a', 'ds', 'a', 'approved', 'ana', 'fine', 0.5, 3), ('ds/b', 'ds', 'b', 'to do', NULL, '', 2.0, 0);
INSERT INTO levels VALUES ('ds/a', 21, 1, 'L2 short');
INSERT INTO metrics VALUES ('ds/a', 10.0, 'ana', '{"dice": 0.9}');
INSERT INTO history VALUES ('ds/a', 1.0, 'ana', 'claim', ''), ('ds/a', 2.0, 'ana', 'update', '{}');
"""


def test_a_first_version_file_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:  # a file as the first release wrote it
        con.executescript(_V1_FILE)
    db = ReviewDB(path)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT value FROM schema_meta WHERE name='version'").fetchone() == ("2",)
        cols = [r[1] for r in con.execute("PRAGMA table_info(levels)")]
        assert cols[-2:] == ["reviewer", "updated_at"]
        idx = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"history_case", "metrics_case", "cases_queue"} <= idx
    a = db.get("ds/a")
    assert (a.status, a.reviewer, a.comment, a.version) == ("approved", "ana", "fine", 3)
    assert db.levels("ds/a") == {21: (True, "L2 short")} and db.latest_metrics("ds/a") == {"dice": 0.9}
    assert db.history("ds/a") == [(1.0, "ana", "claim", ""), (2.0, "ana", "update", "{}")]
    assert db.claim_next("ben").case_key == "ds/b"
    ReviewDB(path)  # opening again changes nothing
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT count(*) FROM schema_meta").fetchone() == (1,)


def test_a_newer_schema_is_refused_untouched(review_location):
    db = _db(review_location, 1)
    db._run(lambda t: t.execute("UPDATE schema_meta SET value='7' WHERE name='version'"), write=True)
    db.close()
    before = open(db.path, "rb").read() if db.path else None
    with pytest.raises(ReviewDBError, match="schema version 7 is newer than this napari-spine knows"):
        ReviewDB(review_location)
    if db.path:
        assert open(db.path, "rb").read() == before


def test_a_fresh_database_has_every_table(review_location):
    db = ReviewDB(review_location)
    tables = db._run(lambda t: db._store.tables(t))
    assert {"cases", "levels", "metrics", "history", "schema_meta"} <= tables
    assert Counter(db._run(lambda t: [r["name"] for r in t.execute("SELECT name FROM schema_meta")])) == \
        Counter(["version"])


def test_two_reviewers_saving_a_new_case_at_once_both_land(review_location):
    """The first save of a case that is not queued yet, by two reviewers at the same moment
    (threads released by a barrier, each with its own connection), 25 rounds: never a
    duplicate-key error, and both decisions are in the case's history."""
    import threading

    dbs = [ReviewDB(review_location) for _ in range(2)]
    errors: list[BaseException] = []
    for k in range(25):
        key = f"ds/new{k:02d}"
        gate = threading.Barrier(2)

        def save(i):
            gate.wait()
            try:
                dbs[i].save_review(key, f"r{i}", "approved", f"round {k}")
            except BaseException as exc:  # noqa: BLE001 - collected, the test reports it
                errors.append(exc)

        threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, f"round {k}: {errors[0]!r}"
        hist = dbs[0].history(key)
        assert sorted(r for _, r, a, _ in hist if a == "update") == ["r0", "r1"], hist
        assert dbs[0].get(key).version == 4 and dbs[0].get(key).claimed_by is None
