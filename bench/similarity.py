"""Time and memory of the label-free similarity matrices on an archive's pretrained vectors.

    python bench/similarity.py ../shared/data/eurosat-rgb --bands rgb --sizes 5000,26000

The vectors come from the archive's feature cache (``rsgui-cli index --method pretrained`` or a
UAHM training fills it; otherwise the backbone runs first, not timed). For each size N it builds
the improved variant's symmetric kNN graph (K from :func:`training.ssm.knn_k`) and, up to
``--two-stage-max`` tiles, the method's two-stage matrix (K1 / K2 = 10 % / 6 % of N), and prints
seconds, the growth of the process's peak resident memory, the IoU against the classes and the
share of similar pairs that are of one class (IoU punishes a sparse graph for the pairs it never
claims).
``ratio_knn_vs_two_stage_s=X`` compares both at the largest size both ran.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsgui.archive import Archive  # noqa: E402
from rsgui.progress import drive  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive")
    ap.add_argument("--bands", default="rgb")
    ap.add_argument("--sizes", default="5000,26000")
    ap.add_argument("--two-stage-max", type=int, default=5000)
    args = ap.parse_args()
    from rsgui.services.similarity import extractor_job
    from training.ssm import accuracy_iou, build_ssm, knn_graph_job, knn_k, pair_precision, scaled_k

    archive = Archive.open(args.archive)
    sizes = [min(int(s), len(archive)) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(archive))
    enc, raw = drive(extractor_job(archive, np.sort(order[: max(sizes)]), args.bands))
    x_all = enc.standardise(raw)
    labels_all = archive.labels[np.sort(order[: max(sizes)])]
    rows, times = [], {}
    for n in sizes:
        x, y = x_all[:n], labels_all[:n]
        for kind in ("knn", "two-stage"):
            if kind == "two-stage" and n > args.two_stage_max:
                continue
            before = peak_mb()
            t0 = time.perf_counter()
            if kind == "knn":
                k = knn_k(n)
                ssm = drive(knn_graph_job(x, k))
                ks = f"K = {k}"
            else:
                k1, k2 = scaled_k(n, 500), scaled_k(n, 300)
                ssm = build_ssm(x, k1, k2)
                ks = f"K1 = {k1}, K2 = {k2}"
            secs = time.perf_counter() - t0
            grow = peak_mb() - before
            _, iou = accuracy_iou(ssm, y)
            times[(kind, n)] = secs
            prec = pair_precision(ssm, y)
            rows.append((kind, n, ks, secs, grow, ssm.packed.nbytes / 2**20, iou, prec))
            print(f"{kind} {n}: {secs:.1f} s", file=sys.stderr, flush=True)
    print(f"\n{archive.root.name}: pretrained vectors ({x_all.shape[1]} values) of {args.bands}")
    print(
        "| matrix | tiles | K | seconds | peak memory growth MB | matrix MB | IoU | pairs of one class |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, n, ks, secs, grow, mb, iou, prec in rows:
        print(
            f"| {kind} | {n} | {ks} | {secs:.1f} | {grow:.0f} | {mb:.0f} | {iou:.3f} | {prec:.3f} |"
        )
    both = [n for n in sizes if ("two-stage", n) in times]
    if both:
        n = max(both)
        print(f"ratio_knn_vs_two_stage_s={times[('knn', n)] / times[('two-stage', n)]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
