"""On-demand benchmark: sliding-window inference (CPU, or CUDA when present).

    .venv/bin/python benchmarks/bench_inference.py [--device cuda] [--full-ct]

All ratios are measured in the same run against a baseline:

- INF-1 overhead: napari-spine's sliding window (Gaussian, fp32 accumulator) vs the bare
  network forward passes over the same windows (the sum of per-window forward times).
  Target: <= 1.10x on CPU.
- INF-2 vs MONAI: ``sliding_window_inference`` with the same network, volume, roi,
  overlap 0.5, Gaussian (sigma_scale 0.125), ``sw_batch_size=1``. Target: <= 1.0x.
  Also the pure stitching cost with a trivial 1x1x1 conv and 26 classes (128x128x134,
  64^3 windows), ms per window, ours vs MONAI.
- INF-4 logits -> labels on 26 x 128 x 128 x 134 vs ``torch.argmax(0)``. Target <= 1.0x.
- INF-E2E: ``napari_spine.predict`` with the bundled model on a CT phantom of clinical
  size (``--full-ct``: 512 x 512 x 535 at 0.7 x 0.7 x 1 mm), total seconds and voxels/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _best(fn, repeat=5):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _drain(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def main(argv=None) -> int:
    import torch

    from napari_spine.inference.nets import SmallUNet3d
    from napari_spine.inference.resample import logits_to_labels
    from napari_spine.inference.sliding import sliding_window, window_slices

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--full-ct", action="store_true")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    res: dict = {"device": str(dev), "torch": torch.__version__, "threads": torch.get_num_threads()}
    print(f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads")

    # -- INF-1: overhead vs bare forwards ---------------------------------------------------
    torch.manual_seed(0)
    net = SmallUNet3d(1, 5).to(dev).eval()
    vol = torch.randn((1, 96, 96, 100), device=dev)
    patch = (64, 64, 64)
    wins = window_slices(vol.shape[1:], patch, 0.5)

    def predictor(b):
        with torch.inference_mode():
            return net(b)

    def bare():
        with torch.inference_mode():
            for sl in wins:
                net(vol[(slice(None), *sl)][None])
        sync()

    def ours():
        out = _drain(sliding_window(vol, predictor, patch, step=0.5))
        sync()
        return out

    bare()  # warm-up
    t_bare, _ = _best(bare)
    t_ours, _ = _best(ours)
    res["INF-1"] = {"windows": len(wins), "bare_forward_s": t_bare, "sliding_window_s": t_ours,
                    "ratio": t_ours / t_bare, "target": "<= 1.10"}
    print(f"INF-1 {len(wins)} windows of 64^3 (small U-Net): bare forwards {t_bare:.2f} s, "
          f"sliding window {t_ours:.2f} s -> {t_ours / t_bare:.3f}x")

    # -- INF-2: vs MONAI --------------------------------------------------------------------
    try:
        from monai.inferers import sliding_window_inference
    except ImportError:
        sliding_window_inference = None
        print("INF-2 skipped: MONAI is not installed")
    if sliding_window_inference is not None:
        def monai_run(x, fn, roi):
            with torch.inference_mode():
                out = sliding_window_inference(x[None], roi, 1, fn, overlap=0.5, mode="gaussian",
                                               sigma_scale=0.125)
            sync()
            return out[0]

        # alternate the two so that machine noise hits both alike
        t_monai = t_ours = float("inf")
        for _ in range(5):
            t, m_out = _best(lambda: monai_run(vol, net, patch), 1)
            t_monai = min(t_monai, t)
            t, o_out = _best(ours, 1)
            t_ours = min(t_ours, t)
        diff = float((m_out.float() - o_out.float()).abs().max())
        res["INF-2"] = {"monai_s": t_monai, "ours_s": t_ours, "ratio": t_ours / t_monai,
                        "max_abs_logit_diff": diff, "target": "<= 1.0"}
        print(f"INF-2 same network: MONAI {t_monai:.2f} s, ours {t_ours:.2f} s -> "
              f"{t_ours / t_monai:.3f}x (max |logit diff| {diff:.3g})")
        triv = torch.nn.Conv3d(1, 26, 1).to(dev).eval()
        big = torch.randn((1, 128, 128, 134), device=dev)
        n2 = len(window_slices(big.shape[1:], patch, 0.5))

        def ours_triv():
            with torch.inference_mode():
                out = _drain(sliding_window(big, triv, patch, step=0.5))
            sync()
            return out

        t_m2 = t_o2 = float("inf")
        for _ in range(5):
            t_m2 = min(t_m2, _best(lambda: monai_run(big, triv, patch), 1)[0])
            t_o2 = min(t_o2, _best(ours_triv, 1)[0])
        res["INF-2-stitch"] = {"windows": n2, "monai_ms_per_window": 1e3 * t_m2 / n2,
                               "ours_ms_per_window": 1e3 * t_o2 / n2, "ratio": t_o2 / t_m2}
        print(f"INF-2 stitching, 26 classes, {n2} windows: MONAI {1e3 * t_m2 / n2:.0f} ms/window, "
              f"ours {1e3 * t_o2 / n2:.0f} ms/window -> {t_o2 / t_m2:.3f}x")

    # -- INF-4: logits -> labels -------------------------------------------------------------
    logits = torch.randn((26, 128, 128, 134), device=dev)

    def ref_argmax():
        out = torch.argmax(logits, 0)
        sync()
        return out

    def ours_argmax():
        out = logits_to_labels(logits, logits.shape[1:])
        sync()
        return out

    t_a, a = _best(ref_argmax)
    t_b, b = _best(ours_argmax)
    same = bool((a == b).all())
    res["INF-4"] = {"argmax_s": t_a, "ours_s": t_b, "ratio": t_b / t_a, "identical": same,
                    "target": "<= 1.0"}
    print(f"INF-4 26x128x128x134: torch.argmax {t_a:.3f} s, ours (slabs) {t_b:.3f} s -> "
          f"{t_b / t_a:.2f}x, identical {same}")

    # -- end to end with the bundled model ----------------------------------------------------
    import napari_spine

    shape, sp = ((512, 535, 512), (0.7, 1.0, 0.7)) if args.full_ct else ((192, 200, 192), (1.0, 1.0, 1.0))
    case = napari_spine.make_phantom(shape, sp, levels=("T10", "S1"), seed=0)
    model = napari_spine.load_model("default")
    t0 = time.perf_counter()
    pred = napari_spine.predict(case, model, dev)
    t_e2e = time.perf_counter() - t0
    nvox = int(case.image.size)
    res["INF-E2E"] = {"shape": list(case.shape), "spacing": list(sp), "seconds": t_e2e,
                      "voxels_per_s": nvox / t_e2e, "timings": pred.timings,
                      "target": "< 30 s for 512x512x535 on a GPU"}
    print(f"INF-E2E bundled model on {case.shape} @ {sp} mm: {t_e2e:.1f} s "
          f"({nvox / t_e2e / 1e6:.1f} Mvoxel/s) {json.dumps({k: round(v, 2) for k, v in pred.timings.items()})}")
    out = Path(__file__).with_name("results_inference.json")
    out.write_text(json.dumps(res, indent=1))
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
