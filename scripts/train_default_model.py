"""Train the bundled default model on synthetic phantoms and write it with its card.

    .venv/bin/python scripts/train_default_model.py            # ~20 min on 2 CPU cores
    .venv/bin/python scripts/train_default_model.py --iterations 20 --out /tmp/m.ts  # smoke

Data recipe: 30 phantoms from ``napari_spine.make_phantom``, CT (HU) and MR T1/T2
contrast, cervical, thoracic, thoracolumbar and lumbar level ranges, random curvature,
noise, field of view and seed; two thirds isotropic 2 mm, one third thick-slice sagittal
series (12-20 slices of 3-4.5 mm) resampled to 2 mm as inference does. 1,000 iterations
of two 64^3 patches (70 % centred on the spine), intensity scale/shift, gamma, blur and
noise, left-right mirroring only; cross-entropy (cord weighted 3x) plus soft Dice. Classes: background, vertebra (every level, endplates
included), disc (every level), spinal canal, spinal cord; levels are not predicted (use
*Identify levels*). Evaluation: Dice per class on held-out phantoms (other seeds) and on
the real crops in ``../shared/realdata`` when present, through the full
``napari_spine.predict`` pipeline; the numbers go into the model card and
``docs/default_model.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_spine import make_phantom, ontology  # noqa: E402
from napari_spine.inference.card import ModelCard  # noqa: E402

CLASSES = {0: "background", 1: "vertebra", 2: "disc", 3: "spinal canal", 4: "spinal cord"}
CLASS_NAMES = ["background", "vertebra", "disc", "spinal canal", "spinal cord"]
SPACING = 2.0
PATCH = 64
LEVEL_RANGES = [("C2", "T2"), ("C3", "T4"), ("T3", "L1"), ("T8", "S1"), ("T11", "S1"), ("T12", "S1")]
MODALITIES = ["CT", "MR-T1", "MR-T2"]


def class_lut() -> np.ndarray:
    """Canonical anatomy id -> training class."""
    lut = np.zeros(256, np.int64)
    for s in ontology.STRUCTURES:
        if s.kind == "vertebra" or s.kind == "endplate":
            lut[s.id] = 1
        elif s.kind == "disc":
            lut[s.id] = 2
    lut[ontology.SPINAL_CANAL] = 3
    lut[ontology.SPINAL_CORD] = 4
    return lut


def _to_model_grid(case):
    """Resample a phantom to the model's 2 mm grid as inference does (linear / nearest)."""
    import torch
    import torch.nn.functional as F

    from napari_spine.inference.resample import grid_shape

    size = grid_shape(case.shape, case.spacing, (SPACING,) * 3)
    img = torch.from_numpy(case.image.astype(np.float32))[None, None]
    img = F.interpolate(img, size=size, mode="trilinear", align_corners=False)[0, 0].numpy()
    lab = torch.from_numpy(np.ascontiguousarray(case.labels).astype(np.int64))[None, None].float()
    lab = F.interpolate(lab, size=size, mode="nearest-exact")[0, 0].numpy().astype(np.uint8)
    return img, lab


def make_cases(seeds, rng_seed, prefix="train"):
    """Phantoms on the model grid: 2/3 isotropic at 2 mm, 1/3 thick-slice sagittal MR-like
    (12-20 slices of 3-4.5 mm left-right, 0.6-1 mm in plane) resampled to 2 mm, as real
    sagittal series are."""
    from napari_spine.case import SpineCase
    from napari_spine.geometry import display_affine_from_transform

    rng = np.random.default_rng(rng_seed)
    out = []
    for i, seed in enumerate(seeds):
        levels = LEVEL_RANGES[rng.integers(len(LEVEL_RANGES))]
        cervical = levels[0].startswith("C")
        height = float(rng.uniform(160, 224) if cervical else rng.uniform(220, 340))  # mm
        fov = np.array([rng.uniform(80, 128), height, rng.uniform(112, 180)])
        if i % 3 == 2:  # a sagittal series: 12-20 slices, narrower than a patch left-right
            sp = np.array([rng.uniform(3.0, 4.5), rng.uniform(0.6, 1.0), 0.0])
            sp[2] = sp[1]
            fov[0] = sp[0] * rng.integers(12, 21)
            modality = MODALITIES[1 + int(rng.integers(2))]
        else:
            sp = np.full(3, SPACING)
            modality = MODALITIES[i % 3]
        shape = tuple(int(round(f / s)) for f, s in zip(fov, sp, strict=True))
        case = make_phantom(shape, tuple(sp), levels=levels, modality=modality,
                            curvature=float(rng.uniform(0.3, 1.6)), noise=float(rng.uniform(0.5, 1.8)),
                            seed=int(seed), case_id=f"{prefix}{seed}")
        if not np.allclose(sp, SPACING):
            img, lab = _to_model_grid(case)
            aff = display_affine_from_transform((SPACING,) * 3, (0.0, 0.0, 0.0))  # (L, I, P)
            case = SpineCase.from_arrays(img, aff, lab,
                                         case_id=case.case_id, modality=case.modality)
        out.append(case)
    return out


def zscore(img):
    img = img.astype(np.float32)
    return (img - img.mean()) / max(float(img.std()), 1e-8)


def sample(rng, img, lab):
    shp = np.array(img.shape)
    pad = np.maximum(PATCH - shp, 0)
    if pad.any():
        widths = [(p // 2, p - p // 2) for p in pad]
        img = np.pad(img, widths)  # zeros after z-scoring, as the sliding window pads
        lab = np.pad(lab, widths)
        shp = np.array(img.shape)
    if rng.random() < 0.7:
        fg = np.argwhere(lab > 0)
        c = fg[rng.integers(len(fg))]
        start = np.clip(c - PATCH // 2 + rng.integers(-12, 13, 3), 0, shp - PATCH)
    else:
        start = np.array([rng.integers(0, s - PATCH + 1) for s in shp])
    sl = tuple(slice(int(a), int(a) + PATCH) for a in start)
    x, y = img[sl].copy(), lab[sl].copy()
    x = x * rng.uniform(0.75, 1.3) + rng.uniform(-0.3, 0.3)
    if rng.random() < 0.3:  # gamma on the [0, 1]-rescaled patch
        lo, hi = float(x.min()), float(x.max())
        x = ((x - lo) / max(hi - lo, 1e-6)) ** rng.uniform(0.7, 1.5) * (hi - lo) + lo
    if rng.random() < 0.2:  # partial-volume / thick-slice blur
        from scipy import ndimage

        x = ndimage.gaussian_filter(x, rng.uniform(0.3, 1.2, 3)).astype(np.float32)
    x = x + rng.normal(0, rng.uniform(0, 0.15), x.shape).astype(np.float32)
    if rng.random() < 0.5:  # left-right mirror only: superior/anterior stay put
        x, y = x[::-1].copy(), y[::-1].copy()
    return x, y


def dice_per_class(pred, ref, n=5):
    out = {}
    for c in range(1, n):
        a, b = pred == c, ref == c
        s = a.sum() + b.sum()
        out[CLASS_NAMES[c]] = float(2 * (a & b).sum() / s) if s else float("nan")
    return out


def evaluate(model, lut):
    import napari_spine
    from napari_spine.anatomy.labelmaps import get_label_map  # noqa: F401

    res = {"phantoms": {}, "realdata": {}}
    held = make_cases(range(1000, 1006), 7, prefix="heldout")
    for case in held:
        pred = napari_spine.predict(case, model, "cpu")
        res["phantoms"][f"{case.case_id} {case.modality}"] = dice_per_class(
            lut[pred.labels], lut[case.labels])
    real = ROOT.parent / "shared" / "realdata"
    pairs = [("tptbox_ct", "sub-ct_label-22_ct.nii.gz", "sub-ct_seg-vert_label-22_msk.nii.gz",
              "sub-ct_seg-subreg_label-22_msk.nii.gz"),
             ("tptbox_mri", "sub-mri_label-6_T2w.nii.gz", "sub-mri_seg-vert_label-6_msk.nii.gz",
              "sub-mri_seg-subreg_label-6_msk.nii.gz")]
    for folder, img, vert, sub in pairs:
        if not (real / folder / img).is_file():
            continue
        case = napari_spine.load_case(real / folder / img, real / folder / vert, label_scheme="verse")
        sub_case = napari_spine.load_case(real / folder / img, real / folder / sub, label_scheme="verse")
        ref = lut[case.labels]
        canal = np.isin(sub_case.labels, [ontology.SPINAL_CANAL])
        cord = np.isin(sub_case.labels, [ontology.SPINAL_CORD])
        ref[canal] = 3
        ref[cord] = 4
        pred = napari_spine.predict(case, model, "cpu")
        d = dice_per_class(lut[pred.labels], ref)
        if not canal.any():
            d.pop("spinal canal")
        if not cord.any():
            d.pop("spinal cord")
        res["realdata"][folder] = d
    return res


def main(argv=None):
    import torch

    from napari_spine.inference.nets import SmallUNet3d

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "src/napari_spine/models/default_spine_unet.ts"))
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--cases", type=int, default=30)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    lut = class_lut()
    t0 = time.time()
    cases = make_cases(range(args.cases), args.seed)
    data = [(zscore(np.asarray(c.image)), lut[np.asarray(c.labels)]) for c in cases]
    print(f"{len(cases)} phantoms in {time.time() - t0:.1f} s", flush=True)
    net = SmallUNet3d(1, len(CLASSES))
    class_weight = torch.tensor([1.0, 1.0, 1.0, 1.0, 3.0])  # the thin cord
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.iterations,
                                                pct_start=0.1)
    t0 = time.time()
    for it in range(args.iterations):
        batch = [sample(rng, *data[rng.integers(len(data))]) for _ in range(args.batch)]
        x = torch.from_numpy(np.stack([b[0] for b in batch]))[:, None]
        y = torch.from_numpy(np.stack([b[1] for b in batch]))
        logits = net(x)
        ce = torch.nn.functional.cross_entropy(logits, y, weight=class_weight)
        p = torch.softmax(logits, 1)
        oh = torch.nn.functional.one_hot(y, len(CLASSES)).permute(0, 4, 1, 2, 3).float()
        inter = (p * oh).sum((0, 2, 3, 4))[1:]
        denom = (p + oh).sum((0, 2, 3, 4))[1:]
        dice = 1 - ((2 * inter + 1) / (denom + 1)).mean()
        loss = ce + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 25 == 0 or it == args.iterations - 1:
            print(f"it {it:4d}  loss {loss.item():.3f}  ce {ce.item():.3f}  "
                  f"dice-loss {dice.item():.3f}  {time.time() - t0:.0f} s", flush=True)
    train_s = time.time() - t0
    net.eval()
    card = ModelCard(
        name="napari-spine default (phantom-trained 3-D U-Net)",
        version="1",
        description=(
            "Vertebra, disc, spinal canal and cord on CT and MR, trained only on synthetic "
            "phantoms: a demonstration and smoke-test model, not a clinical one. Levels are "
            "not predicted (use Identify levels)."),
        axcodes="LIP",
        spacing=(SPACING,) * 3,
        patch_size=(PATCH,) * 3,
        normalization={"scheme": "zscore"},
        labels=CLASSES,
        modalities=("CT", "MR-T1", "MR-T2"),
        extra={"training": {
            "command": "python scripts/train_default_model.py "
                       f"--iterations {args.iterations} --cases {args.cases} --seed {args.seed}",
            "data": f"{args.cases} phantoms (make_phantom), 2 mm, CT/MR-T1/MR-T2, level ranges "
                    f"{LEVEL_RANGES}", "train_seconds": round(train_s),
            "torch": torch.__version__}},
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(net)
        torch.jit.save(scripted, str(tmp), _extra_files={"model_card.json": card.to_json()})
    os.replace(tmp, out)
    from napari_spine.inference import load_model

    model = load_model(out)
    metrics = evaluate(model, lut)
    card = ModelCard.from_json(card.to_json())
    extra = dict(card.extra)
    extra["metrics"] = metrics
    card = ModelCard(**{**card.__dict__, "extra": extra})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(scripted, str(tmp), _extra_files={"model_card.json": card.to_json()})
    os.replace(tmp, out)
    print(json.dumps(metrics, indent=1))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), trained in {train_s:.0f} s")


if __name__ == "__main__":
    main()
