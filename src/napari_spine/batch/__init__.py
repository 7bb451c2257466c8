"""Whole datasets headless: ``predict``, ``qa`` and ``export`` over every case, on Dask.

One function per case (:func:`process_case`) does the same work as the widgets, through
the same core functions (``load_case``, ``predict``, ``export_labels``,
``level_metrics``, ``validate_sequence``); :func:`run` lists the cases, skips those already
done, and maps the rest over a ``dask.distributed`` cluster (or runs them in this process
with ``workers=0``). Only case references (paths and small metadata) go to the workers and
only small result rows come back; images and labels never cross a process boundary.

Output folder::

    DIR/summary.csv            one row per case (status, reason, outputs, key numbers)
    DIR/summary.json           the same rows, plus the run's options
    DIR/summary.parquet        the same table (when pandas and pyarrow are installed)
    DIR/report.html            QA report (qa)
    DIR/cases/<case>/...       per-case outputs (labels NIfTI, *.json)
    DIR/cases/<case>/done.json fingerprint of inputs, options and model, written last
    DIR/logs/<case>.log        per-case log (timings, messages, the traceback on failure)

A case is *up to date* when its ``done.json`` fingerprint matches (input files' size and
modification time, the command's options, the model file's hash, the package version)
and its outputs exist: a rerun skips it, so a killed run continues where it stopped.
Every file is written to a temporary name and renamed, so nothing is ever half-written.
Rows do not hold timings, so ``summary.csv`` is identical whatever the number of workers.
"""

from ..io.files import safe_name, unique_name
from .fingerprint import case_fingerprint, model_fingerprint
from .options import COMMANDS, BatchError, BatchOptions, BatchResult
from .outputs import SUMMARY_FIELDS, write_summary
from .runner import run, select_cases
from .work import process_case

__all__ = ["COMMANDS", "SUMMARY_FIELDS", "BatchError", "BatchOptions", "BatchResult",
           "case_fingerprint", "model_fingerprint", "process_case", "run", "safe_name", "unique_name",
           "select_cases", "write_summary"]
