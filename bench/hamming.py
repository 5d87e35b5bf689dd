"""Exact Hamming top-k of rsgui against FAISS ``IndexBinaryFlat`` on one thread.

Usage: ``python bench/hamming.py [--n 1000000] [--k 100] [--batch 100] [--repeat 3]``.
Needs the ``bench`` extra (faiss-cpu). Both sides search an already prepared archive (FAISS after
``add``, rsgui after ``PackedCodes``); times are the best of ``--repeat``
alternating runs (5x as many for a single query). Results are checked
for identity: distances exactly, ids exactly once FAISS's ties are put in archive order.
The last line reads ``ratio_vs_faiss_64=X ratio_vs_faiss_128=Y`` (our time / FAISS time for the
query batch).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rsgui.hamming import PackedCodes, hamming_topk  # noqa: E402


def best_times(fns, repeat: int):
    """Best wall time of each function over ``repeat`` rounds, run alternately so a busy machine
    slows both sides alike; also the last result of each."""
    best, out = [float("inf")] * len(fns), [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            out[i] = fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best, out


def faiss_in_archive_order(idx: np.ndarray, dist: np.ndarray):
    """FAISS ids re-ordered by (distance, id) so ties follow archive order.

    Only valid when the tie group at the k-th distance is complete; the check below compares
    distances exactly and, for ids, skips the last distance of each row (a tie group FAISS may
    have cut differently)."""
    order = np.lexsort((idx, dist), axis=-1)
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def identical(ours, theirs) -> bool:
    oi, od = ours
    fi, fd = faiss_in_archive_order(*theirs)
    if not np.array_equal(od, fd.astype(od.dtype)):
        return False
    for r in range(oi.shape[0]):
        inner = od[r] < od[r, -1]  # complete tie groups: ids must match exactly
        if not np.array_equal(oi[r, inner], fi[r, inner]):
            return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        import faiss
    except ImportError:
        print(
            "faiss is not installed: pip install 'rsgui[bench]' (faiss-cpu) to run this benchmark"
        )
        return 1
    faiss.omp_set_num_threads(1)
    try:  # keep numpy/BLAS single-threaded too (the search itself uses no BLAS)
        import threadpoolctl

        threadpoolctl.threadpool_limits(1)
    except ImportError:
        pass

    rng = np.random.default_rng(args.seed)
    rows, ratios = [], {}
    for bits in (64, 128):
        db = rng.integers(0, 256, (args.n, bits // 8), dtype=np.uint8)
        queries = rng.integers(0, 256, (args.batch, bits // 8), dtype=np.uint8)
        index = faiss.IndexBinaryFlat(bits)
        index.add(db)
        packed = PackedCodes(db, bits)
        hamming_topk(packed, queries[:1], args.k)  # warm-up (sample, buffers)
        for nq in (1, args.batch):
            q = queries[:nq]
            (t_ours, t_faiss), (ours, res) = best_times(
                [
                    lambda q=q, p=packed: hamming_topk(p, q, args.k),
                    lambda q=q, ix=index: ix.search(q, args.k),
                ],
                args.repeat if nq > 1 else 5 * args.repeat,
            )
            theirs = (res[1].astype(np.int64), res[0].astype(np.int64))
            same = identical(ours, theirs)
            ratio = t_ours / t_faiss
            rows.append((bits, nq, t_ours * 1e3, t_faiss * 1e3, ratio, same))
            if nq == args.batch:
                ratios[bits] = ratio
    print(
        f"exact top-{args.k} over {args.n:,} random codes, one thread, best of {args.repeat} alternating runs"
    )
    print(
        f"{'bits':>5} {'queries':>8} {'ours ms':>10} {'faiss ms':>10} {'ratio':>7} {'identical':>10}"
    )
    for bits, nq, a, b, r, same in rows:
        print(f"{bits:>5} {nq:>8} {a:>10.2f} {b:>10.2f} {r:>7.2f} {'yes' if same else 'NO':>10}")
    print(f"(ratio = ours / faiss; the ratio line uses the {args.batch}-query batch)")
    print(f"ratio_vs_faiss_64={ratios[64]:.3f} ratio_vs_faiss_128={ratios[128]:.3f}")
    return 0 if all(r[-1] for r in rows) else 2


if __name__ == "__main__":
    sys.exit(main())
