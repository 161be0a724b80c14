"""Backbone forward speed on this CPU, side by side in one run (issue 14's encode target).

EfficientNet-Lite0 at 224 px, a batch of 32, interleaved rounds (best of each): torch eager
fp32 NCHW (the baseline) against channels_last + inference_mode, and against the inference form
the product uses (`backbones.fuse_for_inference`: batch norms folded into the convolutions), with
the largest output difference from the plain network. Prints a table and writes
benchmarks/results/encode_speed.json.

    .venv/bin/python benchmarks/bench_encode.py [--rounds 4] [--backbone efficientnet-lite0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fabricsearch.hashing.backbones import get_spec, load_backbone

OUT = Path(__file__).parent / "results" / "encode_speed.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--backbone", default="efficientnet-lite0")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    size = get_spec(args.backbone).input_size
    net = load_backbone(args.backbone)
    fused = load_backbone(args.backbone, fused=True)
    x = torch.rand(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    xc = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        diff = float((net(x) - fused(xc)).abs().max())

    def eager() -> None:
        with torch.no_grad():
            net(x)

    def channels_last() -> None:
        with torch.inference_mode():
            net(xc)

    def product() -> None:
        with torch.inference_mode():
            fused(xc)

    paths = {
        "eager fp32 NCHW": eager,
        "channels_last + inference_mode": channels_last,
        "fused BN + channels_last + inference_mode (product)": product,
    }
    rates: dict[str, list[float]] = {k: [] for k in paths}
    for fn in paths.values():
        fn()  # warm-up
    for _ in range(args.rounds):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            fn()
            rates[name].append(args.batch / (time.perf_counter() - t0))
    best = {k: max(v) for k, v in rates.items()}
    base = best["eager fp32 NCHW"]
    print(f"{args.backbone}, {size} px, batch {args.batch}, {args.threads} threads")
    print(f"{'path':55s} {'img/s':>7s} {'ratio':>6s}")
    for k, v in best.items():
        print(f"{k:55s} {v:7.1f} {v / base:5.2f}×")
    print(f"largest |fused − plain| output difference: {diff:.2e}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {"backbone": args.backbone, "size": size, "images_per_s": best, "max_abs_diff": diff},
            indent=2,
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
