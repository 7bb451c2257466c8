"""A file without read permission gives a clean error naming it, before any decoder runs
(the gzip index reader under nibabel crashed the process with SIGSEGV on it)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

_CHILD = textwrap.dedent("""
    import os, sys
    import gzip, zlib, indexed_gzip, nibabel, numpy  # imported while the files can be read
    from napari_spine.io import nifti
    import napari_spine.io._fastgz, napari_spine.anatomy.labelnames
    if os.geteuid() == 0:  # as root every file is readable: drop to an unprivileged user
        os.setgid(65534)
        os.setuid(65534)
    for path in sys.argv[1:]:
        print("label file:", nifti.is_label_file(path), flush=True)
        try:
            nifti.load_case(path)
            print("LOADED", path, flush=True)
        except Exception as exc:
            print(type(exc).__name__, exc, flush=True)
""")


def test_an_unreadable_nifti_is_a_clean_error_not_a_crash():
    from napari_spine import make_phantom
    from napari_spine.synthetic import write_phantom

    folder = Path(tempfile.mkdtemp(prefix="unreadable-"))
    try:
        folder.chmod(0o755)  # the unprivileged user may look inside, not read the files
        case = make_phantom((20, 40, 30), levels=("L1", "L3"), seed=1)
        gz, _ = write_phantom(case, folder / "ct.nii.gz", folder / "ct_seg.nii.gz")
        import nibabel as nib

        plain = folder / "plain.nii"
        nib.save(nib.load(gz), plain)
        for p in (gz, plain):
            Path(p).chmod(0)
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(gz), str(plain)], capture_output=True,
                              text=True, timeout=120, env=dict(os.environ))
        if os.geteuid() != 0 and os.access(gz, os.R_OK):
            pytest.skip("this user can read a file without read permission")
        assert proc.returncode == 0, proc.stderr[-2000:]  # before: -11 (SIGSEGV) for the .nii.gz
        out = proc.stdout
        assert out.count("label file: False") == 2 and "LOADED" not in out
        assert f"SpineIOError {gz}: cannot be read (Permission denied)" in out
        assert f"SpineIOError {plain}: cannot be read (Permission denied)" in out  # not "file type"
    finally:
        for p in folder.iterdir():
            p.chmod(0o644)
            p.unlink()
        folder.rmdir()
