"""Review sets between back ends: export/import JSON and CSV, exact round trips, skip or
replace, bad sets, the ``napari-spine review`` command and ``batch qa --review-db``."""

from __future__ import annotations

import csv
import json

import pytest

from napari_spine.cli import main
from napari_spine.qa.metrics import LevelRow
from napari_spine.qa.review import ReviewDB, ReviewDBError
from napari_spine.qa.review_transfer import _dump, export_review, import_review

TRICKY = 'L3, "short"\nsee axial — ünïcode'


def _filled(location) -> ReviewDB:
    """A review set with everything a case can carry, including values a careless CSV
    writer mangles: None next to '', commas, quotes, newlines, 17-digit floats."""
    db = ReviewDB(location)
    db.add_cases([("ds/a", "ds", "a", 0.1 + 0.2, {"dataset_path": "/d", "kind": "ds", "case_id": "a"}),
                  ("ds/b", "ds", "b", 2.0), ("ds/c", "ds", "c", 1e-17)])
    a = db.claim("ds/a", "ana")
    db.update("ds/a", a.version, reviewer="ana", status="needs correction", comment=TRICKY, release=True)
    db.claim("ds/b", "ben")  # held, claim time set
    db.set_level("ds/a", 22, flag=True, comment=TRICKY, reviewer="ana")
    db.set_level("ds/a", 23, flag=False)  # no reviewer: stays None
    db.save_metrics("ds/a", {"dice": {"22": 0.8123456789012345}})
    db.save_snapshot("ds/a", [LevelRow(22, "L3", 0.5, 1.25, 0.75, 10.0, 9.0, -1.0, 0.5, True, 100, 90, 80)], b"\x89PNG-bytes", "ana",
                     {"reference": "ref.nii.gz"})
    return db


def test_sqlite_json_postgres_csv_sqlite_is_exact(tmp_path, pg_cluster):
    src = _filled(str(tmp_path / "start.sqlite"))
    want = _dump(src)
    export_review(src, tmp_path / "set.json")
    pg = ReviewDB(pg_cluster.new_database())
    assert import_review(pg, tmp_path / "set.json") == {"cases": 3, "skipped": 0, "levels": 2, "metrics": 2,
                                                        "history": 3}
    assert _dump(pg) == want
    export_review(pg, tmp_path / "set_csv")
    back = ReviewDB(tmp_path / "end.sqlite")
    import_review(back, tmp_path / "set_csv")
    assert _dump(back) == want
    assert back.get("ds/a").comment == TRICKY and back.get("ds/b").claimed_by == "ben"
    assert back.latest_snapshot("ds/a")[1] == b"\x89PNG-bytes"
    assert back.history("ds/a") == src.history("ds/a")
    # and the moved queue works: claims go on from where they were
    assert back.claim_next("cy").case_key == "ds/c"


def test_csv_keeps_none_apart_from_empty_text(tmp_path):
    db = _filled(tmp_path / "r.sqlite")
    export_review(db, tmp_path / "out")
    with open(tmp_path / "out" / "levels.csv", newline="") as f:
        rows = {r["structure_id"]: r for r in csv.DictReader(f)}
    assert rows["23"]["reviewer"] == "\\N" and rows["23"]["comment"] == "" and rows["22"]["comment"] == TRICKY
    with open(tmp_path / "out" / "cases.csv", newline="") as f:
        triage = {r["case_key"]: r["triage"] for r in csv.DictReader(f)}
    assert float(triage["ds/a"]) == 0.1 + 0.2 and triage["ds/c"] == "1e-17"
    again = ReviewDB(tmp_path / "again.sqlite")
    import_review(again, tmp_path / "out")
    assert _dump(again) == _dump(db)


def test_existing_cases_are_skipped_or_replaced_whole(tmp_path):
    src = _filled(tmp_path / "src.sqlite")
    export_review(src, tmp_path / "set.json")
    dst = ReviewDB(tmp_path / "dst.sqlite")
    dst.add_cases([("ds/a", "ds", "a", 5.0), ("ds/z", "ds", "z", 1.0)])
    dst.set_level("ds/a", 1, flag=True, comment="theirs")
    n = import_review(dst, tmp_path / "set.json")
    assert (n["cases"], n["skipped"]) == (2, 1)
    assert dst.get("ds/a").triage == 5.0 and dst.levels("ds/a") == {1: (True, "theirs")}  # kept
    assert dst.get("ds/b").claimed_by == "ben"
    n = import_review(dst, tmp_path / "set.json", replace=True)
    assert (n["cases"], n["skipped"]) == (3, 0)
    assert dst.get("ds/a").comment == TRICKY and set(dst.levels("ds/a")) == {22, 23}  # replaced whole
    assert [a for _, _, a, _ in dst.history("ds/a")] == ["claim", "update"]
    assert dst.get("ds/z").triage == 1.0  # not in the set: untouched


def test_a_failing_import_changes_nothing(tmp_path):
    src = _filled(tmp_path / "src.sqlite")
    export_review(src, tmp_path / "set.json")
    doc = json.loads((tmp_path / "set.json").read_text())
    doc["levels"].append({"case_key": "ds/not-in-the-set", "structure_id": 1, "flag": 1, "comment": "",
                          "reviewer": None, "updated_at": None})
    doc["cases"].append(dict(doc["cases"][0]))  # the same case twice: the second insert fails
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    dst = ReviewDB(tmp_path / "dst.sqlite")
    with pytest.raises(ReviewDBError, match="dst.sqlite"):
        import_review(dst, tmp_path / "bad.json")
    assert dst.queue() == []  # one transaction: not even the first case stayed


def test_bad_review_sets_are_refused_by_name(tmp_path):
    db = ReviewDB(tmp_path / "r.sqlite")
    (tmp_path / "x.json").write_text('{"format": "something else"}')
    with pytest.raises(ReviewDBError, match=r"x\.json: not a napari-spine review set"):
        import_review(db, tmp_path / "x.json")
    (tmp_path / "new.json").write_text(json.dumps({"format": "napari-spine review set", "schema_version": 99}))
    with pytest.raises(ReviewDBError, match="schema version 99"):
        import_review(db, tmp_path / "new.json")
    (tmp_path / "cut.json").write_text('{"format": "napari-spine review set", "schema_ver')
    with pytest.raises(ReviewDBError, match=r"cut\.json: cannot read"):
        import_review(db, tmp_path / "cut.json")
    export_review(_filled(tmp_path / "src.sqlite"), tmp_path / "set")
    lines = (tmp_path / "set" / "cases.csv").read_text().splitlines()
    (tmp_path / "set" / "cases.csv").write_text("\n".join([lines[0].replace(",triage", ",triaje")] + lines[1:]))
    with pytest.raises(ReviewDBError, match=r"cases\.csv: missing column\(s\) triage"):
        import_review(db, tmp_path / "set")
    export_review(_filled(tmp_path / "src2.sqlite"), tmp_path / "set2")
    text = (tmp_path / "set2" / "cases.csv").read_text().replace("0.30000000000000004", "zero point three")
    (tmp_path / "set2" / "cases.csv").write_text(text)
    with pytest.raises(ReviewDBError, match="'zero point three' is not a number"):
        import_review(db, tmp_path / "set2")
    assert db.queue() == []
    with pytest.raises(ReviewDBError, match="not an empty folder"):
        export_review(db, tmp_path / "set2")  # never written over


def test_review_command(tmp_path, monkeypatch, capsys):
    _filled(tmp_path / "team.sqlite")
    assert main(["review", "export", str(tmp_path / "s.json"), "--review-db", str(tmp_path / "team.sqlite")]) == 0
    monkeypatch.setenv("NAPARI_SPINE_REVIEW_DB", str(tmp_path / "new.sqlite"))
    assert main(["review", "import", str(tmp_path / "s.json")]) == 0
    assert "3 cases imported" in capsys.readouterr().out
    assert main(["review", "import", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "0 cases imported" in out and "3 already there" in out
    assert ReviewDB(tmp_path / "new.sqlite").get("ds/a").comment == TRICKY
    rc = main(["review", "export", str(tmp_path / "t.json"), "--review-db",
               "postgresql://ana:Sekrit-99@db.example/rev"])
    err = capsys.readouterr().err
    assert rc == 2 and "pgpass" in err and "Sekrit-99" not in err
    monkeypatch.delenv("NAPARI_SPINE_REVIEW_DB")
    assert main(["review", "export", str(tmp_path / "t.json")]) == 2
    assert "--review-db" in capsys.readouterr().err
    (tmp_path / "junk.sqlite").write_bytes(b"junk" * 20)
    assert main(["review", "export", str(tmp_path / "t.json"), "--review-db", str(tmp_path / "junk.sqlite")]) == 2
    assert "not an SQLite database" in capsys.readouterr().err
