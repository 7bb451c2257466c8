"""``batch qa --review-db``: the checked cases go into a review queue, most suspicious first,
each with its level metrics, so reviewers can start where the batch left off."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..io.files import safe_name

__all__ = ["queue_for_review"]


def queue_for_review(location: str, rows: Sequence[dict], out: Path, ds, root: Path) -> int:
    """Add the ``ok`` cases of a ``batch qa`` run to the review database at ``location``
    with their triage scores and metrics snapshots; returns how many were queued. Cases
    already in the queue keep their review state (their triage is refreshed)."""
    from ..qa.metrics import LevelRow
    from ..qa.review import ReviewDB
    from ..qa.triage import triage_score

    keys = {c.case_id: c.key for c in ds.cases}
    queued = []
    for r in rows:
        qa = out / "cases" / safe_name(r["case_id"]) / "qa.json"
        if r["status"] != "ok" or not qa.is_file():
            continue
        doc = json.loads(qa.read_text())
        levels = [LevelRow.from_dict(x) for x in doc.get("levels", [])]
        score = triage_score([x for x in levels if x.voxels_ref], int(r.get("errors") or 0))
        queued.append((keys.get(r["case_id"], r["case_id"]), r["case_id"], score, levels, doc))
    if not queued:
        return 0
    db = ReviewDB(location)
    try:
        db.add_cases((key, ds.kind, cid, score,
                      {"dataset_path": str(root), "kind": ds.kind, "case_id": cid})
                     for key, cid, score, _, _ in queued)
        for key, _, _, levels, doc in queued:
            db.save_snapshot(key, levels, None, reviewer="batch qa",
                             info={"reference": doc.get("reference", ""), "candidate": doc.get("candidate", ""),
                                   "findings": [f.get("message", "") for f in doc.get("findings", [])]})
    finally:
        db.close()
    return len(queued)
