"""Review database: claims, optimistic updates, concurrency, bad files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from napari_spine.qa.review import ReviewConflict, ReviewDB, ReviewDBError


def _db(tmp_path, n=20):
    db = ReviewDB(tmp_path / "review.sqlite")
    db.add_cases((f"ds/c{i:02d}", "ds", f"c{i:02d}", float(i)) for i in range(n))
    return db


def test_queue_claim_update_and_levels(tmp_path):
    db = _db(tmp_path, 3)
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
    db.set_level("ds/c01", 22, flag=True, comment="L3 undersegmented")
    assert db.levels("ds/c01") == {22: (True, "L3 undersegmented")}
    db.save_metrics("ds/c01", {"dice": {"22": 0.8}})
    assert db.latest_metrics("ds/c01") == {"dice": {"22": 0.8}}
    with pytest.raises(ValueError, match="status"):
        db.update("ds/c00", 0, reviewer="x", status="done")
    # state survives reopening
    again = ReviewDB(tmp_path / "review.sqlite")
    assert again.get("ds/c02").status == "approved" and again.get("ds/c02").comment == "fine"
    # re-adding cases keeps their review state
    again.add_cases([("ds/c02", "ds", "c02", 9.0)])
    assert again.get("ds/c02").status == "approved" and again.get("ds/c02").triage == 9.0


_WORKER = textwrap.dedent("""
    import json, sys
    from napari_spine.qa.review import ReviewDB
    db = ReviewDB(sys.argv[1], timeout=60)
    me = sys.argv[2]
    claims = []
    for _ in range(500):
        c = db.claim_next(me)
        if c is None:
            continue
        claims.append([c.case_key, c.version])
        n = int(c.comment or 0)
        db.update(c.case_key, c.version, reviewer=me, status="to do", comment=str(n + 1), release=True)
    print(json.dumps(claims))
""")


def test_two_processes_share_a_queue(tmp_path):
    db = _db(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(db.path), who], stdout=subprocess.PIPE, text=True)
             for who in ("ana", "ben")]
    claims = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    total = sum(int(c.comment) for c in db.queue() if c.comment)
    assert total == len(claims[0]) + len(claims[1]) == 1000  # no lost update
    # no duplicate claim: every claim saw a distinct version of its case
    seen = [tuple(c) for both in claims for c in both]
    assert len(seen) == len(set(seen))
    # and the history alternates claim / update per case
    for case in db.queue():
        actions = [a for _, _, a, _ in db.history(case.case_key)]
        assert all(x != y for x, y in zip(actions, actions[1:]))


def test_corrupt_file_is_refused_and_kept(tmp_path):
    bad = tmp_path / "review.sqlite"
    bad.write_bytes(b"this is not a database" * 10)
    with pytest.raises(ReviewDBError, match=r"review\.sqlite: not an SQLite database"):
        ReviewDB(bad)
    assert bad.read_bytes() == b"this is not a database" * 10


def test_locked_database_gives_a_clear_error(tmp_path):
    db = _db(tmp_path, 2)
    locker = sqlite3.connect(db.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        slow = db
        slow.timeout = 0.2
        with pytest.raises(ReviewDBError, match="locked"):
            slow.claim_next("ana")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert db.claim_next("ana") is not None  # nothing was lost


def test_a_crashed_reviewers_claim_is_offered_again_once_stale(tmp_path, monkeypatch):
    import napari_spine.qa.review as review

    clock = {"t": 1_000_000.0}
    monkeypatch.setattr(review.time, "time", lambda: clock["t"])  # time is injected, not slept
    db = _db(tmp_path, n=2)
    gone = db.claim_next("ana")  # ana's program dies with the case claimed, 'in review'
    assert gone.case_key == "ds/c01" and gone.status == "in review"
    clock["t"] += 600
    assert db.claim_next("ben", stale_after_s=3600).case_key == "ds/c00"  # fresh claim: skipped
    clock["t"] += 3600
    again = db.claim_next("cy", stale_after_s=3600)
    assert again is not None and again.case_key == "ds/c01" and again.claimed_by == "cy"
    with pytest.raises(ReviewConflict, match="ana does not hold this case.*cy does"):
        db.update("ds/c01", again.version, reviewer="ana", status="approved")
    done = db.update("ds/c01", again.version, reviewer="cy", status="approved", release=True)
    assert done.status == "approved" and db.claim_next("dee", stale_after_s=3600) is None


def test_only_the_holder_may_update(tmp_path):
    db = _db(tmp_path, n=3)
    case = db.get("ds/c00")
    with pytest.raises(ReviewConflict, match="nobody has claimed it"):
        db.update("ds/c00", case.version, reviewer="eve", status="approved")
    held = db.claim("ds/c00", "ana")
    with pytest.raises(ReviewConflict, match="eve does not hold this case"):
        db.update("ds/c00", held.version, reviewer="eve", comment="mine now")
    assert db.get("ds/c00").comment == "" and db.get("ds/c00").version == held.version
