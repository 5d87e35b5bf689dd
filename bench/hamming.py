"""Exact Hamming top-k of rsgui against FAISS ``IndexBinaryFlat``, both on one thread.

Usage: ``python bench/hamming.py [--n 1000000] [--k 100] [--batch 100] [--repeat 5]``.
Needs the ``bench`` extra (faiss-cpu). Both sides search an already prepared archive (FAISS after
``add``, rsgui after ``PackedCodes``); each measurement is the best of ``--repeat`` rounds in which
the contenders run alternately (5x as many rounds for a single query), as thread CPU time and as
wall time. CPU time is the headline: on a shared machine it is not inflated by waiting for a core.
Results are checked for identity: distances exactly, ids exactly wherever the distance is below the
row's k-th distance (FAISS may cut the last tie group differently; its ties are re-ordered by id).
The last line reads ``ratio_vs_faiss_64=X ratio_vs_faiss_128=Y``: our CPU time / FAISS CPU time for
the query batch, with the backend rsgui uses by default (numba when installed, else numpy).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rsgui import hamming  # noqa: E402
from rsgui.hamming import PackedCodes, hamming_topk  # noqa: E402


def best_times(fns, repeat: int):
    """Best (cpu, wall) seconds of each function over ``repeat`` alternating rounds, and the last
    result of each."""
    cpu, wall, out = [np.inf] * len(fns), [np.inf] * len(fns), [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            c, w = time.thread_time(), time.perf_counter()
            out[i] = fn()
            cpu[i] = min(cpu[i], time.thread_time() - c)
            wall[i] = min(wall[i], time.perf_counter() - w)
    return cpu, wall, out


def identical(ours, theirs) -> bool:
    """Distances equal; ids equal wherever the distance is below the row's last (k-th) distance."""
    oi, od = ours
    fi, fd = theirs
    order = np.lexsort((fi, fd), axis=-1)  # FAISS ties put in archive order
    fi, fd = np.take_along_axis(fi, order, 1), np.take_along_axis(fd, order, 1)
    if not np.array_equal(od, fd.astype(od.dtype)):
        return False
    inner = od < od[:, -1:]
    return bool(np.array_equal(oi[inner], fi[inner]))


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
            "faiss is not installed: install the 'bench' extra (pip install faiss-cpu) to run this"
        )
        return 1
    faiss.omp_set_num_threads(1)

    backends = ["numpy"]
    t = time.perf_counter()
    if hamming.numba_available():
        backends.insert(0, "numba")
        print(
            f"numba kernel ready in {time.perf_counter() - t:.1f} s (compiled or loaded from cache)"
        )
    else:
        print("numba is not installed: only the numpy backend is measured")
    default = hamming._choose_backend(None, args.n)

    rng = np.random.default_rng(args.seed)
    rows, ratios = [], {}
    for bits in (64, 128):
        db = rng.integers(0, 256, (args.n, bits // 8), dtype=np.uint8)
        queries = rng.integers(0, 256, (args.batch, bits // 8), dtype=np.uint8)
        index = faiss.IndexBinaryFlat(bits)
        index.add(db)
        packed = PackedCodes(db, bits)
        for nq in (1, args.batch):
            q = queries[:nq]
            fns = [lambda q=q, ix=index: ix.search(q, args.k)]
            for b in backends:
                fns.append(lambda q=q, p=packed, b=b: hamming_topk(p, q, args.k, backend=b))
            for fn in fns:  # warm-up: sample, buffers, page faults
                fn()
            cpu, wall, out = best_times(fns, args.repeat if nq > 1 else 5 * args.repeat)
            d, i = out[0]
            theirs = (i.astype(np.int64), d.astype(np.int64))
            for j, b in enumerate(backends, start=1):
                same = identical(out[j], theirs)
                ratio = cpu[j] / cpu[0]
                rows.append((bits, nq, b, cpu[j], cpu[0], ratio, wall[j], wall[0], same))
                if nq == args.batch and b == default:
                    ratios[bits] = ratio
    print(f"exact top-{args.k} over {args.n:,} random codes, one thread, best of alternating runs")
    print(
        f"{'bits':>4} {'queries':>7} {'backend':>7} {'ours ms':>9} {'faiss ms':>9} {'ratio':>6}"
        f" {'wall ours':>10} {'wall faiss':>10} {'identical':>9}"
    )
    for bits, nq, b, a, f, r, wa, wf, same in rows:
        print(
            f"{bits:>4} {nq:>7} {b:>7} {a * 1e3:>9.2f} {f * 1e3:>9.2f} {r:>6.2f}"
            f" {wa * 1e3:>10.2f} {wf * 1e3:>10.2f} {'yes' if same else 'NO':>9}"
        )
    print(
        f"ms = thread CPU time; ratio = ours / faiss (CPU); the ratio line uses the {args.batch}-query"
        f" batch and the default backend ({default})"
    )
    print(f"ratio_vs_faiss_64={ratios[64]:.3f} ratio_vs_faiss_128={ratios[128]:.3f}")
    return 0 if all(r[-1] for r in rows) else 2


if __name__ == "__main__":
    sys.exit(main())
