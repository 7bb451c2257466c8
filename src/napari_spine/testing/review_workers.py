"""Processes that work a shared review queue, for the concurrency and crash tests.

``python -m napari_spine.testing.review_workers churn LOCATION NAME SECONDS`` claims the
next case, adds one to the counter in its comment and hands it back, for SECONDS; it
prints the ``[case, version]`` of every claim as JSON. ``... hang LOCATION NAME CASE MARKER``
claims CASE, then starts a change to it and, holding the transaction open, creates the
file MARKER and waits to be killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..qa.review import ReviewDB


def churn(location: str, me: str, seconds: float) -> list[list]:
    """Claim, count and release cases until ``seconds`` have passed."""
    db = ReviewDB(location, timeout=60)
    claims: list[list] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c = db.claim_next(me)
        if c is None:
            continue
        claims.append([c.case_key, c.version])
        n = int(c.comment or 0)
        db.update(c.case_key, c.version, reviewer=me, status="to do", comment=str(n + 1), release=True)
    return claims


def hang(location: str, me: str, case_key: str, marker: str) -> None:
    """Claim a case, then die (when killed) in the middle of changing it."""
    db = ReviewDB(location, timeout=60)
    db.claim(case_key, me)

    def half_done(t):
        t.execute("UPDATE cases SET comment='half-written', version=version+1 WHERE case_key=?", (case_key,))
        t.execute("INSERT INTO history(case_key, at, reviewer, action, detail) VALUES (?, ?, ?, 'update', '')",
                  (case_key, time.time(), me))
        Path(marker).write_text("in the transaction")
        time.sleep(3600)
    db._run(half_done, write=True)


def main(argv: list[str]) -> int:
    """The command line above."""
    if argv[0] == "churn":
        print(json.dumps(churn(argv[1], argv[2], float(argv[3]))))
    elif argv[0] == "hang":
        hang(*argv[1:5])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
