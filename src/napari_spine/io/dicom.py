"""DICOM series in: a folder, a file or a list of files read into one volume with exact
geometry, or refused with the reason.

Reading is pydicom's. Pixel data are decoded by pydicom itself (native and RLE) and by
GDCM (``python-gdcm``) for JPEG lossless, JPEG-LS and JPEG 2000: one BSD-licensed wheel
that covers every lossless syntax scanners and PACS send (the pylibjpeg decoder for JPEG
lossless is GPL-licensed). Siemens mosaics are unpacked by nibabel's DICOM wrapper, which
reads the CSA header for the number of tiles and the slice normal.

Geometry, for a classic one-image-per-file series:

- slices are sorted by their position along the slice normal (ImagePositionPatient ·
  (row cosines × column cosines)), never by InstanceNumber;
- the slice spacing comes from the positions, not from SliceThickness (overlapping
  reconstructions, thicker than their spacing, are normal);
- RescaleSlope/Intercept are applied per image (CT in HU); pydicom's pixel handlers take
  care of signedness and BitsStored;
- the affine maps (column, row, slice) indices to LPS millimetres from
  ImageOrientationPatient, PixelSpacing and the positions, and is turned to RAS;
- the voxels are then laid out as dcm2niix lays them out (rows stored bottom-up, slices
  in position order), so the volume, its affine and every label file exported from it
  equal the dcm2niix conversion of the series voxel for voxel: a segmentation made on a
  dcm2niix NIfTI (nnU-Net datasets, TotalSegmentator runs) opens on the DICOM case.

Refused, with a message that names the series and the problem: images of different
orientations or sizes, two images at one position, uneven spacing (a missing slice is
named as such), a slice direction that is not normal to the images (gantry tilt: a
sheared grid that a NIfTI affine cannot hold without resampling). Non-image objects (SR,
presentation states, segmentations) are skipped when a folder is scanned.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GeometryError, SpineIOError

__all__ = ["DicomVolume", "SeriesInfo", "is_dicom_file", "is_dicom_source", "read_series", "scan"]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_NON_IMAGE_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # structured reports
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.66.",  # segmentations, registrations, surfaces
    "1.2.840.10008.5.1.4.1.1.481.",  # RT objects
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated PDF / CDA
)
_TILT_DEG = 0.05  # a slice direction further off the normal than this is a gantry tilt
_SPACING_TOL = 0.01  # relative deviation of one slice gap from the median allowed


class DicomError(SpineIOError):
    """A DICOM file or series cannot be read as a volume (the message says why)."""


@dataclass(frozen=True)
class SeriesInfo:
    """One stack of images that can become a volume: a series, or the part of a series
    with one orientation and size."""

    uid: str
    files: tuple[str, ...]
    modality: str = ""
    description: str = ""
    number: int | None = None
    rows: int = 0
    columns: int = 0
    frames: int = 0
    orientation: str = ""  # "axial", "sagittal", "coronal", "oblique"
    localizer: bool = False
    #: the headers read by :func:`scan` (pixel data deferred), reused by :func:`read_series`
    datasets: tuple = field(default=(), compare=False, repr=False)

    @property
    def voxels(self) -> int:
        """Rows x columns x images."""
        return self.rows * self.columns * self.frames

    def label(self) -> str:
        """One line for a series list."""
        num = f"#{self.number} " if self.number is not None else ""
        desc = self.description or "(no description)"
        return f"{num}{desc}: {self.modality} {self.orientation}, {self.frames} images of {self.columns}x{self.rows}"


@dataclass
class DicomVolume:
    """A series read in (column, row, slice) order with its RAS affine."""

    path: str
    array: np.ndarray
    affine: np.ndarray
    header: Any = None  # no NIfTI header: exports build one from the affine
    meta: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def is_dicom_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def is_dicom_source(path: str | os.PathLike) -> bool:
    """A DICOM file, a folder holding at least one (searched a few levels deep), or a zip
    archive of them."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() == ".zip":
            try:
                return any(_zip_members(p, limit=1, probe=32))
            except DicomError:
                return False
        return p.suffix.lower() == ".dcm" or is_dicom_file(p)
    if p.is_dir():
        return any(is_dicom_file(f) for f in _files(p, limit=64))
    return False


#: a zip member larger than this uncompressed is not read (no DICOM image is near it)
MAX_MEMBER_BYTES = 2 << 30
ZIP_SEP = "::"


def _zip_members(archive: Path, limit: int | None = None, probe: int | None = None) -> Iterable[str]:
    """``archive::member`` locations of the DICOM members of a zip (by their preamble);
    ``probe``: give up after looking at that many members (a quick "is this DICOM?")."""
    import zipfile

    try:
        with zipfile.ZipFile(archive) as z:
            n = 0
            for looked, info in enumerate(sorted(z.infolist(), key=lambda i: i.filename)):
                if probe is not None and looked >= probe:
                    return
                if info.is_dir() or "__MACOSX" in info.filename or info.file_size < 132:
                    continue
                if info.flag_bits & 0x1 or info.file_size > MAX_MEMBER_BYTES:
                    continue
                with z.open(info) as fh:
                    if fh.read(132)[128:132] != b"DICM":
                        continue
                yield f"{archive}{ZIP_SEP}{info.filename}"
                n += 1
                if limit is not None and n >= limit:
                    return
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
        raise DicomError(f"{archive}: not a readable zip archive ({exc})") from exc


def _read_location(location: str):
    """The dataset of a file path or an ``archive::member`` location (pixel data of a file
    left in it until used; a member is read whole)."""
    if ZIP_SEP not in location:
        return _read_header(Path(location))
    import io
    import zipfile

    import pydicom

    archive, member = location.split(ZIP_SEP, 1)
    try:
        with zipfile.ZipFile(archive) as z:
            info = z.getinfo(member)
            if info.file_size > MAX_MEMBER_BYTES:
                raise DicomError(f"{location}: {info.file_size / 1e9:.1f} GB uncompressed; not read")
            data = z.read(info)
        return pydicom.dcmread(io.BytesIO(data))
    except DicomError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile and pydicom raise many kinds; name the member
        raise DicomError(f"{location}: not a readable DICOM member ({type(exc).__name__}: {exc})") from exc


def _files(folder: Path, limit: int | None = None) -> Iterable[Path]:
    n = 0
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            if name.startswith("."):
                continue
            yield Path(root) / name
            n += 1
            if limit is not None and n >= limit:
                return


def _read_header(path: Path):
    """The whole dataset, with large values (the pixel data) left in the file until used."""
    import pydicom

    try:
        return pydicom.dcmread(str(path), defer_size=4096)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds; name the file
        raise DicomError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc})") from exc


def _is_image(ds) -> bool:
    sop = str(ds.get("SOPClassUID", ""))
    if any(sop.startswith(p) for p in _NON_IMAGE_PREFIXES):
        return False
    return "Rows" in ds and "Columns" in ds


def _orientation(iop: Sequence[float]) -> str:
    normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:6], float))
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < 0.8:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _iop(ds) -> tuple[float, ...] | None:
    iop = ds.get("ImageOrientationPatient")
    if iop is None:
        shared = ds.get("SharedFunctionalGroupsSequence")
        try:
            iop = shared[0].PlaneOrientationSequence[0].ImageOrientationPatient
        except (TypeError, IndexError, AttributeError):
            return None
    return tuple(float(v) for v in iop)


def scan(path: str | os.PathLike) -> list[SeriesInfo]:
    """The image series under ``path`` (a folder, searched recursively, or one file),
    largest first; images of one series with different orientations or sizes are listed
    as separate stacks. Raises :class:`DicomError` when there is no image at all."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".zip":
        files: list = list(_zip_members(p))
    else:
        files = [p] if p.is_file() else [f for f in _files(p) if is_dicom_file(f)]
    groups: dict[tuple, list[tuple[str, Any]]] = {}
    skipped = 0
    for f in files:
        ds = _read_location(str(f))
        if not _is_image(ds):
            skipped += 1
            continue
        iop = _iop(ds)
        key = (str(ds.get("SeriesInstanceUID", "")), int(ds.Rows), int(ds.Columns),
               None if iop is None else tuple(round(v, 3) for v in iop))
        groups.setdefault(key, []).append((str(f), ds))
    if not groups:
        what = f"{len(files)} DICOM file(s), none of them an image" if files else "no DICOM files"
        raise DicomError(f"{p}: {what} (skipped {skipped} non-image object(s))" if skipped else f"{p}: {what}")
    out = []
    for (uid, rows, cols, iop), items in groups.items():
        ds = items[0][1]
        frames = sum(int(d.get("NumberOfFrames", 1) or 1) for _, d in items)
        kinds = [str(v).upper() for v in (ds.get("ImageType") or [])]
        items.sort(key=lambda fd: fd[0])
        out.append(SeriesInfo(
            uid=uid, files=tuple(f for f, _ in items), datasets=tuple(d for _, d in items),
            modality=str(ds.get("Modality", "")),
            description=str(ds.get("SeriesDescription", "")),
            number=int(ds.SeriesNumber) if ds.get("SeriesNumber") not in (None, "") else None,
            rows=rows, columns=cols, frames=frames,
            orientation="" if iop is None else _orientation(iop),
            localizer="LOCALIZER" in kinds,
        ))
    out.sort(key=lambda s: (s.localizer, -s.voxels, s.number if s.number is not None else 0))
    return out


def default_series(series: Sequence[SeriesInfo]) -> SeriesInfo:
    """The series opened when none is chosen: the largest axial or sagittal one that is
    not a localizer, else the largest."""
    for s in series:
        if not s.localizer and s.orientation in ("axial", "sagittal"):
            return s
    return series[0]


def read_series(source: str | os.PathLike | SeriesInfo | Sequence[str | os.PathLike],
                series: str | int | None = None) -> DicomVolume:
    """Read one series as a :class:`DicomVolume`.

    ``source`` is a folder or file (the series is ``series``: a SeriesInstanceUID, a
    SeriesNumber, or the default of :func:`default_series`), a :class:`SeriesInfo` from
    :func:`scan`, or the files of one series.
    """
    if isinstance(source, SeriesInfo):
        info = source
    elif isinstance(source, (str, os.PathLike)):
        found = scan(source)
        info = _choose(found, series, source)
    else:
        info = SeriesInfo(uid="", files=tuple(str(f) for f in source))
    where = str(source if not isinstance(source, SeriesInfo) else Path(info.files[0]).parent)
    return _read(info, where)


def _choose(found: list[SeriesInfo], series, source) -> SeriesInfo:
    if series is None:
        return default_series(found)
    for s in found:
        if str(series) in (s.uid, str(s.number)):
            return s
    listing = "; ".join(s.label() for s in found)
    raise DicomError(f"{source}: no series {series!r} (found: {listing})")


def _read(info: SeriesInfo, where: str) -> DicomVolume:
    if len(info.datasets) == len(info.files):
        datasets = list(zip(info.files, info.datasets, strict=True))
    else:
        datasets = [(f, _read_location(str(f))) for f in info.files]
    images = [(f, ds) for f, ds in datasets if _is_image(ds)]
    if not images:
        raise DicomError(f"{where}: no image among {len(datasets)} DICOM object(s)")
    for f, ds in images:
        _check_pixel_size(f, ds)
    first = images[0][1]
    kinds = [str(v).upper() for v in (first.get("ImageType") or [])]
    if "MOSAIC" in kinds:
        if len(images) != 1:
            raise DicomError(f"{where}: {len(images)} Siemens mosaics (a time series); open one file of it")
        vol = _read_mosaic(*images[0])
    elif int(first.get("NumberOfFrames", 1) or 1) > 1 or "PerFrameFunctionalGroupsSequence" in first:
        if len(images) != 1:
            raise DicomError(f"{where}: {len(images)} multi-frame objects in one series; open them one by one")
        vol = _read_multiframe(*images[0])
    else:
        vol = _read_stack(_frames_of_files(images), where)
    if not vol.array.dtype.isnative:  # big-endian transfer syntax: native order for everything after
        vol.array = vol.array.astype(vol.array.dtype.newbyteorder("="))
    vol.meta.update(_metadata(first))
    return vol


def _check_pixel_size(path: str, ds) -> None:
    """Refuse a file whose declared image is larger than the data it holds (before any
    decoding allocates it)."""
    if "PixelData" not in ds:
        raise DicomError(f"{path}: image without pixel data")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise DicomError(f"{path}: a colour image ({ds.get('PhotometricInterpretation', '?')}, "
                         f"{ds.SamplesPerPixel} samples per pixel): only greyscale images make a volume")
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    bits = int(ds.get("BitsAllocated", 16) or 16)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    need = rows * cols * frames * spp * bits // 8
    if need <= 0:
        raise DicomError(f"{path}: image of {rows}x{cols}x{frames} holds no pixels")
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    have = len(ds.PixelData)
    if ts is not None and not ts.is_compressed and have < need:
        raise DicomError(f"{path}: pixel data holds {have} bytes; {rows}x{cols}x{frames} images of "
                         f"{bits} bits need {need} (truncated or corrupt)")
    if ts is not None and ts.is_compressed and need > 64 * max(have, 1) + (1 << 24):
        raise DicomError(f"{path}: {need} bytes of pixels declared in {have} bytes of compressed data "
                         "(corrupt size fields)")


def _pixels(path: str, ds) -> np.ndarray:
    try:
        return ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - the decoder's own error, with the file
        ts = ds.file_meta.get("TransferSyntaxUID", "?")
        raise DicomError(f"{path}: pixel data cannot be decoded ({getattr(ts, 'name', ts)}: "
                         f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__})") from exc


def _plane(path: str, ds) -> np.ndarray:
    """One image's stored values as (rows, columns): straight from the bytes when they are
    uncompressed and every allocated bit is stored, else through pydicom's handlers
    (sign extension of fewer stored bits, compressed syntaxes)."""
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    bits, stored = int(ds.get("BitsAllocated", 16)), int(ds.get("BitsStored", 16))
    if ts is not None and not ts.is_compressed and bits in (8, 16, 32) and stored == bits:  # one greyscale frame
        kind = "i" if int(ds.get("PixelRepresentation", 0)) else "u"
        order = ">" if ts == "1.2.840.10008.1.2.2" else "<"
        rows, cols = int(ds.Rows), int(ds.Columns)
        raw = np.frombuffer(ds.PixelData, f"{order}{kind}{bits // 8}", count=rows * cols)
        return raw.reshape(rows, cols)
    return _pixels(path, ds)


@dataclass
class _Frame:
    """One image of a stack: a file of a classic series, or a frame of a multi-frame object."""

    name: str
    iop: np.ndarray | None
    ipp: np.ndarray | None
    spacing: tuple[float, float] | None  # (row spacing, column spacing)
    slope: float
    intercept: float
    size: tuple[int, int]
    pixels: Any  # () -> (rows, columns) stored values
    thickness: float | None = None


def _frames_of_files(images: list[tuple[str, Any]]) -> list[_Frame]:
    def vec(ds, tag):
        return np.asarray(ds.get(tag), float) if ds.get(tag) is not None else None

    return [_Frame(name=f, iop=vec(ds, "ImageOrientationPatient"), ipp=vec(ds, "ImagePositionPatient"),
                   spacing=tuple(float(v) for v in ds.PixelSpacing) if "PixelSpacing" in ds else None,
                   slope=float(ds.get("RescaleSlope", 1) or 1), intercept=float(ds.get("RescaleIntercept", 0) or 0),
                   size=(int(ds.Rows), int(ds.Columns)), pixels=lambda f=f, ds=ds: _plane(f, ds),
                   thickness=float(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 0) or None)
            for f, ds in images]


def _group(ds, i: int, name: str):
    """The functional group ``name`` of frame ``i``: the frame's own, else the shared one."""
    for seq in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        groups = ds.get(seq)
        if not groups:
            continue
        item = groups[i] if seq.startswith("PerFrame") else groups[0]
        if name in item and item.get(name):
            return item.get(name)[0]
    return None


def _frames_of_multiframe(path: str, ds) -> list[_Frame]:
    """The frames of an enhanced multi-frame object, placed by their functional groups
    (PS3.3 C.7.6.16): plane position and orientation, pixel measures, value transformation."""
    n = int(ds.NumberOfFrames)
    if ds.get("PerFrameFunctionalGroupsSequence") is None or len(ds.PerFrameFunctionalGroupsSequence) != n:
        raise DicomError(f"{path}: {n} frames but no per-frame functional group for each")
    decoded: list[np.ndarray] = []

    def frame(i: int) -> np.ndarray:  # the whole object is decoded once, when first needed
        if not decoded:
            decoded.append(_pixels(path, ds).reshape(n, int(ds.Rows), int(ds.Columns)))
        return decoded[0][i]

    out = []
    for i in range(n):
        pos, ori = _group(ds, i, "PlanePositionSequence"), _group(ds, i, "PlaneOrientationSequence")
        meas, val = _group(ds, i, "PixelMeasuresSequence"), _group(ds, i, "PixelValueTransformationSequence")
        out.append(_Frame(
            name=f"{path} frame {i + 1}",
            iop=None if ori is None else np.asarray(ori.ImageOrientationPatient, float),
            ipp=None if pos is None else np.asarray(pos.ImagePositionPatient, float),
            spacing=None if meas is None or "PixelSpacing" not in meas else tuple(float(v) for v in meas.PixelSpacing),
            slope=float(val.get("RescaleSlope", 1) or 1) if val is not None else 1.0,
            intercept=float(val.get("RescaleIntercept", 0) or 0) if val is not None else 0.0,
            size=(int(ds.Rows), int(ds.Columns)), pixels=lambda i=i: frame(i),
            thickness=None if meas is None else float(meas.get("SpacingBetweenSlices") or meas.get("SliceThickness") or 0) or None))
    return out


def _output_dtype(planes: Sequence[np.ndarray], slopes: np.ndarray, inters: np.ndarray) -> np.dtype:
    """The dtype of the rescaled volume: the stored one without rescaling, int16/int32 for a
    slope of 1 and whole intercepts (as the values need), float32 otherwise."""
    if np.all(slopes == 1) and np.all(inters == np.round(inters)):
        if np.all(inters == 0):
            return planes[0].dtype.newbyteorder("=")
        lo = min(float(p.min()) + b for p, b in zip(planes, inters, strict=True))
        hi = max(float(p.max()) + b for p, b in zip(planes, inters, strict=True))
        return np.dtype(np.int16 if -32768 <= lo and hi <= 32767 else np.int32)
    return np.dtype(np.float32)


def _assemble(frames: list[_Frame]) -> np.ndarray:
    """The (column, row, slice) volume, rows bottom-up (:func:`_rows_bottom_up`), in
    Fortran order, rescaled per image while each plane is copied in."""
    planes = [fr.pixels() for fr in frames]
    slopes = np.array([fr.slope for fr in frames])
    inters = np.array([fr.intercept for fr in frames])
    rows, cols = planes[0].shape
    dt = _output_dtype(planes, slopes, inters)
    out = np.empty((cols, rows, len(planes)), dt, order="F")
    for k, (plane, a, b) in enumerate(zip(planes, slopes, inters, strict=True)):
        dst = out[:, ::-1, k]
        if dt.kind == "f":
            np.multiply(plane.T, np.float32(a), out=dst, casting="unsafe")
            dst += np.float32(b)
        elif b:
            np.add(plane.T, dt.type(b), out=dst, casting="unsafe")
        else:
            dst[...] = plane.T
    return out


def _read_stack(frames: list[_Frame], where: str) -> DicomVolume:
    """Check and place a stack (:func:`_stack_geometry`), then read its pixels."""
    frames, ras, warn = _stack_geometry(frames, where)
    arr = _assemble(frames)  # rows already bottom-up
    return DicomVolume(path=where, array=arr, affine=ras, warnings=warn,
                       meta={"files": len(frames), "source_files": [fr.name for fr in frames]})


def series_grid(info: SeriesInfo) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and RAS affine of a scanned series as :func:`read_series` lays it out, from
    the headers alone (no pixel is decoded); raises what reading it would raise."""
    images = [(f, ds) for f, ds in zip(info.files, info.datasets, strict=True) if _is_image(ds)]
    first = images[0][1]
    if "PerFrameFunctionalGroupsSequence" in first:
        frames = _frames_of_multiframe(images[0][0], first)
    elif "MOSAIC" in [str(v).upper() for v in (first.get("ImageType") or [])]:
        vol = _read_mosaic(*images[0])
        return vol.array.shape, vol.affine
    else:
        frames = _frames_of_files(images)
    frames, ras, _ = _stack_geometry(frames, str(Path(info.files[0]).parent))
    rows, cols = frames[0].size
    return (cols, rows, len(frames)), ras


# long: the geometry checks of a stack (orientation, size, positions, spacing, tilt) in the
# order the standard's attributes give them, each with its own message
def _stack_geometry(frames: list[_Frame], where: str) -> tuple[list[_Frame], np.ndarray, list[str]]:
    """The frames in position order, the RAS affine of the volume they make (rows bottom-up,
    as dcm2niix stores them) and any warning; raises when they do not make one grid."""
    if any(fr.iop is None or fr.ipp is None for fr in frames):
        raise GeometryError(f"{where}: images without ImageOrientationPatient/ImagePositionPatient "
                            "have no geometry")
    iop = frames[0].iop
    sizes = {fr.size for fr in frames}
    spacings = {tuple(round(v, 5) for v in fr.spacing) for fr in frames if fr.spacing is not None}
    if len(sizes) > 1 or len(spacings) > 1 or any(np.abs(fr.iop - iop).max() > 1e-4 for fr in frames):
        raise GeometryError(f"{where}: the images differ in orientation, size or pixel spacing "
                            f"(sizes {sorted(sizes)}); open each stack on its own")
    if not spacings:
        raise GeometryError(f"{where}: images without PixelSpacing")
    row, col = iop[:3], iop[3:6]
    normal = np.cross(row, col)
    pos = np.array([fr.ipp for fr in frames])
    order = np.argsort(pos @ normal, kind="stable")
    frames = [frames[i] for i in order]
    pos = pos[order]
    dist = pos @ normal
    warn: list[str] = []
    if len(frames) > 1:
        gaps = np.diff(dist)
        if np.any(gaps < 1e-3):
            k = int(np.argmax(gaps < 1e-3))
            raise GeometryError(f"{where}: two images at one position ({frames[k].name} and {frames[k + 1].name}, "
                                f"{dist[k]:.3f} mm along the normal); a multi-echo, multi-phase or "
                                "repeated series: open one of its parts")
        step = float(np.median(gaps))
        off = np.abs(gaps - step) > _SPACING_TOL * step + 1e-3
        if np.any(off):
            k = int(np.argmax(off))
            ratio = gaps[k] / step
            what = (f"a missing slice between {frames[k].name} and {frames[k + 1].name}"
                    if abs(ratio - round(ratio)) < 0.05 and round(ratio) >= 2
                    else f"uneven slice spacing ({gaps[k]:.3f} mm where the others are {step:.3f} mm)")
            raise GeometryError(f"{where}: {what}; the images do not form one regular grid")
        direction = (pos[-1] - pos[0]) / np.linalg.norm(pos[-1] - pos[0])
        tilt = float(np.degrees(np.arccos(np.clip(abs(direction @ normal), -1, 1))))
        if tilt > _TILT_DEG:
            raise GeometryError(f"{where}: the slices are stacked {tilt:.2f} degrees off their normal "
                                "(gantry tilt); the grid is sheared and is not opened (resample it "
                                "first, e.g. with dcm2niix, which corrects tilt)")
        slice_vec = (pos[-1] - pos[0]) / (len(frames) - 1)
    else:
        slice_vec = normal * (frames[0].thickness or 1.0)
        warn.append("a single image: its slice thickness is used as the third voxel size")
    dy, dx = next(iter(spacings))  # row spacing, column spacing
    lps = np.eye(4)
    lps[:3, 0] = row * dx
    lps[:3, 1] = col * dy
    lps[:3, 2] = slice_vec
    lps[:3, 3] = pos[0]
    return frames, _rows_flipped(LPS_TO_RAS @ lps, frames[0].size[0]), warn


def _rows_flipped(affine: np.ndarray, rows: int) -> np.ndarray:
    """The affine of a (column, row, slice) volume of ``rows`` rows once its rows are
    reversed, as dcm2niix stores them (the same world position for every voxel)."""
    out = affine.copy()
    out[:3, 3] = affine[:3, 3] + (rows - 1) * affine[:3, 1]
    out[:3, 1] = -affine[:3, 1]
    return out


def _rows_bottom_up(arr: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (column, row, slice) volume with its rows reversed and its affine (:func:`_rows_flipped`)."""
    return arr[:, ::-1, :], _rows_flipped(affine, arr.shape[1])


def _wrapper(path: str, ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel calls its DICOM readers experimental
        from nibabel.nicom import dicomwrappers

        try:
            return dicomwrappers.wrapper_from_data(ds)
        except Exception as exc:  # noqa: BLE001 - name the file
            raise DicomError(f"{path}: cannot interpret this object's geometry ({exc})") from exc


def _read_mosaic(path: str, ds) -> DicomVolume:
    """A Siemens mosaic: tiles unpacked and placed by nibabel's wrapper (CSA header)."""
    w = _wrapper(path, ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            raw = w.get_data()  # (rows, columns, slices), rescaled when the file says so
            affine = np.asarray(w.affine, float)  # LPS, for that index order
        except Exception as exc:  # noqa: BLE001 - name the file
            raise DicomError(f"{path}: cannot unpack the mosaic ({exc})") from exc
    arr = raw if raw.dtype.kind != "f" or not np.array_equal(raw, np.round(raw)) else _as_int(raw)
    arr, ras = _rows_bottom_up(*_columns_first(arr, LPS_TO_RAS @ affine))
    return DicomVolume(path=path, array=np.asfortranarray(arr), affine=ras,
                       meta={"mosaic": True, "source_files": [path]})


def _columns_first(arr: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nibabel's (row, column, slice) order as (column, row, slice)."""
    out = affine.copy()
    out[:, [0, 1]] = affine[:, [1, 0]]
    return arr.transpose(1, 0, 2), out


def _read_multiframe(path: str, ds) -> DicomVolume:
    """An enhanced multi-frame object: its frames as one stack (:func:`_read_stack`)."""
    vol = _read_stack(_frames_of_multiframe(path, ds), path)
    vol.meta.update(multiframe=True, source_files=[path])
    return vol


def _as_int(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min(initial=0)), float(a.max(initial=0))
    for dt in (np.uint16, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return a.astype(dt)
    return a


_SHOWN = {
    "Modality": "modality", "SeriesDescription": "series_description", "StudyDate": "study_date",
    "Manufacturer": "manufacturer", "ManufacturerModelName": "model", "MagneticFieldStrength": "field_strength_t",
    "ConvolutionKernel": "kernel", "SliceThickness": "slice_thickness_mm", "SeriesNumber": "series_number",
}
_IDENTIFIERS = {"PatientName": "patient_name", "PatientID": "patient_id", "AccessionNumber": "accession",
                "StudyInstanceUID": "study_uid", "SeriesInstanceUID": "series_uid"}


def _metadata(ds) -> dict:
    out = {}
    for tag, key in _SHOWN.items():
        v = ds.get(tag)
        if v not in (None, ""):
            out[key] = str(v) if not isinstance(v, (int, float)) else v
    out["identifiers"] = {key: str(ds.get(tag)) for tag, key in _IDENTIFIERS.items() if ds.get(tag) not in (None, "")}
    return out
