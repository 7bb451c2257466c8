"""``batch qa --review-db``: the checked cases go into a review queue, most suspicious first,
each with its level metrics, so reviewers can start where the batch left off."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["queue_for_review"]


def queue_for_review(location: str, rows: Sequence[dict], out: Path, ds, root: Path) -> int:
    """Add the ``ok`` cases of a ``batch qa`` run to the review database at ``location``
    with their triage scores and metrics snapshots; returns how many were queued. Cases
    already in the queue keep their review state (their triage is refreshed)."""
    from ..qa.review import ReviewDB
    from ..qa.triage import triage_score
    from .outputs import checked_cases

    keys = {c.case_id: c.key for c in ds.cases}
    queued = []
    for r, doc, levels, findings, _ in checked_cases(list(rows), out):
        score = triage_score([x for x in levels if x.voxels_ref], int(r.get("errors") or 0))
        queued.append((keys.get(r["case_id"], r["case_id"]), r["case_id"], score, levels,
                       {"reference": doc.get("reference", ""), "candidate": doc.get("candidate", ""),
                        "findings": list(findings)}))
    if not queued:
        return 0
    db = ReviewDB(location)
    try:
        db.add_cases((key, ds.kind, cid, score,
                      {"dataset_path": str(root), "kind": ds.kind, "case_id": cid})
                     for key, cid, score, _, _ in queued)
        for key, _, _, levels, info in queued:
            db.save_snapshot(key, levels, None, reviewer="batch qa", info=info)
    finally:
        db.close()
    return len(queued)
