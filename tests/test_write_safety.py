"""Write safety by fault injection, not timing: the order of the system calls of a write,
and a failure injected at each of them, for label export, JSON and the edit journal."""

from __future__ import annotations

import builtins
import errno
import os

import numpy as np
import pytest

from napari_spine import ExportError, export_labels, make_phantom
from napari_spine.correction import CorrectionSession, EditJournal, JournalError
from napari_spine.io.files import write_json


class Recorder:
    """Logs writes, fsyncs and renames under one folder; can fail the n-th call of a kind."""

    def __init__(self, folder, monkeypatch, fail: tuple[str, int] | None = None):
        self.folder, self.log, self.fail, self.count = str(folder), [], fail, {}
        real_open, real_fsync, real_replace = builtins.open, os.fsync, os.replace
        rec = self

        def step(kind, what):
            rec.count[kind] = rec.count.get(kind, 0) + 1
            rec.log.append((kind, what))
            if rec.fail is not None and rec.fail == (kind, rec.count[kind]):
                raise OSError(errno.EIO if kind != "write" else errno.ENOSPC, f"injected {kind} failure")

        class File:
            def __init__(self, f, path):
                self._f, self._path = f, path

            def write(self, data):
                step("write", os.path.basename(self._path))
                return self._f.write(data)

            def __getattr__(self, name):
                return getattr(self._f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self._f.__exit__(*exc)

        def opener(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            path = os.fspath(file) if not isinstance(file, int) else ""
            if any(c in mode for c in "wa") and path.startswith(rec.folder):
                return File(f, path)
            return f

        def fsync(fd):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                target = "?"
            if target.startswith(rec.folder):
                step("fsync", "folder" if os.path.isdir(target) else os.path.basename(target))
            return real_fsync(fd)

        def replace(src, dst):
            if os.fspath(dst).startswith(rec.folder):
                step("rename", os.path.basename(os.fspath(dst)))
            return real_replace(src, dst)

        monkeypatch.setattr(builtins, "open", opener)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)

    def kinds(self):
        return [k for k, _ in self.log]


def _case():
    return make_phantom((10, 40, 30), levels=("L3", "L5"), seed=1)


def test_export_writes_then_fsyncs_then_renames_then_fsyncs_the_folder(tmp_path, monkeypatch):
    case = _case()
    r = Recorder(tmp_path, monkeypatch)
    export_labels(case, None, tmp_path / "labels.nii.gz")
    kinds = r.kinds()
    assert kinds[0] == "write" and "fsync" in kinds
    first_fsync, rename = kinds.index("fsync"), kinds.index("rename")
    assert all(k == "write" for k in kinds[:first_fsync])  # every byte before the file's fsync
    assert first_fsync < rename and r.log[rename] == ("rename", "labels.nii.gz")
    assert r.log[rename + 1] == ("fsync", "folder")  # the rename itself made durable
    assert r.log[first_fsync][1].startswith(".labels.part-")  # the temporary file, never the target


@pytest.mark.parametrize("fail", [("write", 1), ("fsync", 1), ("rename", 1)])
def test_a_failure_at_any_step_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, fail):
    case = _case()
    target = tmp_path / "labels.nii.gz"
    export_labels(case, None, target)
    before = target.read_bytes()
    edited = np.where(case.labels == 22, 0, case.labels).astype(case.labels.dtype)
    Recorder(tmp_path, monkeypatch, fail=fail)
    with pytest.raises(ExportError, match=str(target)):
        export_labels(case, edited, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.nii.gz"]


@pytest.mark.parametrize("fail", [None, ("write", 1), ("fsync", 1), ("rename", 1)])
def test_json_is_written_the_same_way(tmp_path, monkeypatch, fail):
    target = tmp_path / "doc.json"
    write_json(target, {"a": 1})
    r = Recorder(tmp_path, monkeypatch, fail=fail)
    if fail is None:
        write_json(target, {"a": 2})
        assert r.kinds() == ["write", "fsync", "rename", "fsync"]
        assert '"a": 2' in target.read_text()
        return
    with pytest.raises(ExportError):
        write_json(target, {"a": 2})
    assert '"a": 1' in target.read_text() and sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_a_journal_step_is_on_disk_before_its_line(tmp_path, monkeypatch):
    lab = np.zeros((4, 5, 6), np.uint8)
    s = CorrectionSession(lab, EditJournal(tmp_path, "c", lab.shape, source=tmp_path / "c.nii.gz"))
    cur = lab.copy()
    cur[0, 0, 0] = 20
    s.commit(cur, "first")  # the case file and folders exist now
    r = Recorder(tmp_path, monkeypatch)
    cur[1, 1, 1] = 21
    s.commit(cur, "second")
    names = [(k, w) for k, w in r.log]
    step_rename = names.index(("rename", "000002.npz"))
    line_write = names.index(("write", "journal.jsonl"))
    assert names[step_rename - 1][0] == "fsync" and names[step_rename + 1] == ("fsync", "folder")
    assert step_rename < line_write and names[line_write + 1] == ("fsync", "journal.jsonl")


def test_a_journal_that_cannot_fsync_says_so_and_keeps_the_edit(tmp_path, monkeypatch):
    lab = np.zeros((4, 5, 6), np.uint8)
    s = CorrectionSession(lab, EditJournal(tmp_path, "c", lab.shape, source=tmp_path / "c.nii.gz"))
    Recorder(tmp_path, monkeypatch, fail=("fsync", 1))
    cur = lab.copy()
    cur[0, 0, 0] = 20
    with pytest.raises(JournalError, match="save the labels now"):
        s.commit(cur, "paint")
    assert s.history.can_undo and s.recorded[0, 0, 0] == 20  # the edit is kept, only not journalled


def test_an_error_that_is_not_about_the_disk_passes_through_unchanged(tmp_path):
    from napari_spine.io.files import atomic_path

    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(ValueError, match="not a disk problem"):
        with atomic_path(target):  # raised before the temporary file exists
            raise ValueError("not a disk problem")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_a_disk_error_names_the_file_and_its_cause(tmp_path):
    from napari_spine.io.files import atomic_path

    target = tmp_path / "x.json"
    with pytest.raises(ExportError, match=r"x\.json: not written \(No space left on device\)"):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not list(tmp_path.iterdir())


def test_only_temporary_files_of_dead_writers_are_cleaned(tmp_path):
    import subprocess
    import sys

    from napari_spine.io.files import remove_stale_parts

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)
    keep = [".notes", "labels.part-1-0123abcd.nii.gz", f".labels.part-{os.getpid()}-0123abcd.nii.gz",
            f".x.part-{dead}-nothex!.json"]
    gone = [f".labels.part-{dead}-0123abcd.nii.gz", f".doc.part-{dead}-89abcdef.json"]
    for name in keep + gone:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / f".dir.part-{dead}-0123abcd").mkdir()  # a folder, not a writer's file
    removed = {p.name for p in remove_stale_parts(tmp_path)}
    assert removed == set(gone)
    assert {p.name for p in tmp_path.iterdir()} == set(keep) | {f".dir.part-{dead}-0123abcd"}


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_parts_of_dead_writers_go_and_the_living_keep_theirs(tmp_path):
    """A killed writer's temporary file (the exact name atomic_path makes) is removed by the
    next write; a running writer's, a symlink and a file of another form are not touched,
    and the running writer is not disturbed."""
    import subprocess
    import sys

    from napari_spine.io.files import atomic_path, remove_stale_parts

    with atomic_path(tmp_path / "lm.json") as tmp:
        made = tmp.name
        tmp.write_text("{}")
    mine = str(os.getpid())
    assert f"-{mine}-" in made
    dead = tmp_path / made.replace(f"-{mine}-", f"-{_dead_pid()}-")
    dead.write_text("half")
    # default dispositions (a shell's nohup would hide a stray SIGHUP): any signal sent ends it
    alive = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGHUP, "
                              "signal.SIG_DFL); time.sleep(30)"])
    try:
        living = tmp_path / made.replace(f"-{mine}-", f"-{alive.pid}-")
        living.write_text("busy")
        link = tmp_path / made.replace(f"-{mine}-", f"-{_dead_pid()}-").replace(".json", ".csv")
        link.symlink_to(tmp_path / "lm.json")
        other = tmp_path / ".notes.part-1-xyz.txt"
        other.write_text("mine")
        assert remove_stale_parts(tmp_path) == [dead]
        assert living.exists() and link.is_symlink() and other.exists() and not dead.exists()
        with pytest.raises(subprocess.TimeoutExpired):  # asking whether it runs did not signal it
            alive.wait(timeout=0.3)
    finally:
        alive.kill()
        alive.wait()


def test_json_text_is_indented_sorted_and_nan_free(tmp_path):
    from napari_spine.io.files import clean_nan, safe_name

    write_json(tmp_path / "a.json", {"b": float("nan"), "a": [1.5, np.int16(3)]})
    assert (tmp_path / "a.json").read_text() == '{\n "a": [\n  1.5,\n  3\n ],\n "b": null\n}'
    assert clean_nan({"a": [1.0, float("nan")], "b": (2.5,), "c": "x"}) == {
        "a": [1.0, None], "b": [2.5], "c": "x"}
    assert safe_name("sub-01/ses 2") == "sub-01_ses_2" and safe_name("../..") == "case"


def test_a_new_header_says_scanner_space_in_millimetres():
    from napari_spine.io.files import nifti_header

    aff = np.diag([0.7, 0.8, 2.5, 1.0])
    hdr, klass = nifti_header(None, aff, (4, 5, 6), np.uint8)
    assert int(hdr["qform_code"]) == 1 and int(hdr["sform_code"]) == 1
    assert hdr.get_xyzt_units() == ("mm", "sec") and klass.__name__ == "Nifti1Image"
    assert np.allclose(hdr.get_best_affine(), aff)


def test_another_users_writer_counts_as_running(monkeypatch):
    from napari_spine.io import files

    def denied(pid, sig):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(files.os, "kill", denied)
    assert files._process_alive(12345) is True  # its files are left alone


def test_a_write_protected_target_is_refused_and_kept(tmp_path):
    from napari_spine.errors import ExportError
    from napari_spine.io.files import atomic_path, write_bytes_atomic

    target = tmp_path / "labels.nii.gz"
    target.write_bytes(b"the annotator's protected file")
    target.chmod(0o444)
    with pytest.raises(ExportError, match=r"labels\.nii\.gz: the file is write-protected; it was not replaced"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"the annotator's protected file"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no part file left
    with atomic_path(target, replace_readonly=True) as tmp:  # asked for: replaced
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
