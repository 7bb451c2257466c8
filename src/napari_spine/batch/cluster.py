"""Dask: connecting to a cluster or starting a local one, and mapping cases over it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..io.files import unique_name
from .options import BatchError, BatchOptions
from .work import process_case

__all__ = ["connect", "local_cluster", "run_on_dask"]


def connect(scheduler: str):
    """A client of the Dask scheduler at ``scheduler``; BatchError when it cannot be reached."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise BatchError("Dask is not installed: pip install 'napari-spine[batch]'") from None
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise BatchError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None


def local_cluster(workers: int, gpu_resource: bool):
    """A LocalCluster of ``workers`` single-threaded processes that share the cores for torch
    (and a ``GPU`` resource each with ``gpu_resource``), and its client."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise BatchError("Dask is not installed: pip install 'napari-spine[batch]' "
                         "(or use --workers 0 to run in this process)") from None
    import importlib.util

    dashboard = ":0" if importlib.util.find_spec("bokeh") else None
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=dashboard, silence_logs=logging.ERROR,
                           resources={"GPU": 1} if gpu_resource else None,
                           env={"NAPARI_SPINE_TORCH_THREADS": str(threads),
                                "OMP_NUM_THREADS": str(threads)})
    return Client(cluster), cluster


def run_on_dask(client, n_workers: int, gpu_resource: bool, todo, opts: BatchOptions, out: Path,
                 fps: dict[str, str], record, say) -> None:
    """Submit every case to a Dask cluster (a LocalCluster unless ``client`` is given) and
    ``record`` each row as it completes; a worker that dies on a case fails that case only."""
    from dask.distributed import as_completed

    cluster = None
    if client is None:
        client, cluster = local_cluster(n_workers, gpu_resource)
    try:
        link = client.dashboard_link if cluster is None or cluster.dashboard_link else ""
        say(f"Dask: {len(client.scheduler_info()['workers'])} workers"
            + (f", dashboard {link}" if link else " (install bokeh for the dashboard)"))
        resources = {"GPU": 1} if gpu_resource else None
        futs = {client.submit(process_case, c, opts, str(out), fps[c.case_id],
                              key=f"{opts.command}-{unique_name(c.case_id)}-{fps[c.case_id][:12]}",
                              pure=False, resources=resources): c for c in todo}
        for f in as_completed(futs):
            c = futs[f]
            try:
                row = f.result()
            except Exception as exc:  # noqa: BLE001 - a worker died on this case
                row = {"case_id": c.case_id, "split": c.split, "status": "failed",
                       "reason": f"{type(exc).__name__}: {exc}", "outputs": ""}
            record(row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
