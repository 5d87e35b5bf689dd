"""Queries held out: ``pretrained``, ``spectral``, ``uahm`` and ``deephash`` in one run.

    python bench/training_free.py ../shared/data/eurosat-ms-subset --bands ms10 --queries 10 --k 20
    python bench/training_free.py ../shared/data/eurosat-rgb --bands rgb --queries 100 --k 100
    python bench/training_free.py ARCHIVE --methods spectral,pretrained,uahm --preset quick

Per split, ``--queries`` tiles of each class are held out; each method is fitted (band limits,
standardisation, PCA + ITQ) or trained (``uahm``: the ``rsgui-cli train`` job with ``--preset``,
labels unused; ``deephash``: the same job with the labels of those tiles) on the other tiles
only, and every held-out tile ranks them by Hamming
distance. Prints MAP@k (``retrieved`` normalisation, :mod:`rsgui.metrics`) and P@10 / P@N for
each method and code length, the time each method took to fit and encode the archive, and a
final ``ratio_map_pretrained_vs_spectral=X`` (at 64 bits). ``--csv DIR`` also writes each
method's top-k ranking as a search CSV (query, rank, path, distance) per code length, for
``../shared/tools/score.py``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsgui import metrics, ranking  # noqa: E402
from rsgui.archive import Archive  # noqa: E402
from rsgui.progress import drive  # noqa: E402
from rsgui.subset import ArchiveSubset  # noqa: E402


def split(labels: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = [
        rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)
    ]
    q = np.sort(np.concatenate(q))
    return q, np.setdiff1d(np.arange(len(labels)), q)


def codes_of(method: str, archive: Archive, db, q, bands: str, bits: int, cache: Path,
             preset: str = "quick"):  # fmt: skip
    """(query codes, archive codes, seconds) with the method fitted on ``db`` only."""
    t0 = time.perf_counter()
    if method in ("uahm", "deephash"):
        from rsgui.encoders import load_trained_encoder
        from rsgui.services.training import train_job

        out = cache / f"{method}-{bands}-{bits}-{preset}-{len(db)}-{int(db.sum())}.safetensors"
        res = drive(train_job(ArchiveSubset(archive, db), method, out, bands=bands, bits=bits,
                              preset=preset, device="cpu"))  # fmt: skip
        enc = load_trained_encoder(res.path, method)
        if method == "uahm":
            cq = drive(enc.archive_codes_job(ArchiveSubset(archive, q)))
            cdb = drive(enc.archive_codes_job(ArchiveSubset(archive, db)))
        else:  # supervised: the labels of the training tiles only
            enc_sub = lambda idx: np.concatenate(  # noqa: E731
                [enc.encode(b.pixels) for b in ArchiveSubset(archive, idx).iter_batches(bands)]
            )
            cq, cdb = enc_sub(q), enc_sub(db)
    elif method == "spectral":
        from rsgui.encoders.spectral import SpectralEncoder

        enc = SpectralEncoder.fit(ArchiveSubset(archive, db), bands, bits)
        enc_sub = lambda idx: np.concatenate(  # noqa: E731
            [enc.encode(b.pixels, b.valid) for b in ArchiveSubset(archive, idx).iter_batches(bands)]
        )
        cq, cdb = enc_sub(q), enc_sub(db)
    else:
        from rsgui.encoders.pretrained import PretrainedEncoder, archive_features_job

        enc = PretrainedEncoder.fit(ArchiveSubset(archive, db), bands, bits, cache_dir=cache)
        raw = drive(archive_features_job(enc, archive))  # every tile, through the cache
        cq = enc.projection.transform(enc.standardise(raw[q]))
        cdb = enc.projection.transform(enc.standardise(raw[db]))
    return cq, cdb, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive")
    ap.add_argument("--bands", default="ms10")
    ap.add_argument("--bits", default="32,64,128")
    ap.add_argument("--queries", type=int, default=10, help="held-out queries per class")
    ap.add_argument("--k", type=int, default=20, help="MAP@k and P@k")
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--methods", default="spectral,pretrained")
    ap.add_argument("--cache", default="/tmp/rsgui-bench-features")
    ap.add_argument("--preset", default="quick", help="training preset of uahm and deephash")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args()
    archive = Archive.open(args.archive)
    labels = archive.labels
    bits_list = [int(b) for b in args.bits.split(",")]
    methods = args.methods.split(",")
    rows: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
    for s in range(args.splits):
        q, db = split(labels, args.queries, s)
        for m in methods:
            for bits in bits_list:
                cq, cdb, secs = codes_of(m, archive, db, q, args.bands, bits, Path(args.cache),
                                       args.preset)  # fmt: skip
                order = ranking.rank(cq, cdb, True, k=args.k)
                rel = labels[db][order] == labels[q][:, None]
                res = (metrics.map_at_k(rel, args.k), rel[:, :10].mean(), rel.mean(), secs)
                rows.setdefault((m, bits), []).append(res)
                print(f"split {s} {m:10s} {bits:4d} bits: MAP@{args.k} {res[0]:.4f} "
                      f"P@10 {res[1]:.4f} P@{args.k} {res[2]:.4f} ({secs:.1f} s)",
                      file=sys.stderr, flush=True)  # fmt: skip
                if args.csv and s == 0:
                    _write_csv(Path(args.csv) / f"{m}-{bits}.csv", archive, q, db, order, cq, cdb)
    n_q, n_db = len(q), len(db)
    print(f"\n{archive.root.name}: {n_q} held-out queries, {n_db} archive tiles, bands "
          f"{args.bands}, mean of {args.splits} splits")  # fmt: skip
    print(f"| method | bits | MAP@{args.k} | P@10 | P@{args.k} | fit+encode s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (m, bits), r in rows.items():
        a = np.mean(np.asarray(r), axis=0)
        print(f"| {m} | {bits} | {a[0]:.4f} | {a[1]:.4f} | {a[2]:.4f} | {a[3]:.1f} |")
    ref_bits = 64 if ("spectral", 64) in rows else bits_list[0]
    for m in ("pretrained", "uahm", "deephash"):
        if (m, ref_bits) in rows and ("spectral", ref_bits) in rows:
            a = np.mean(np.asarray(rows[(m, ref_bits)]), axis=0)
            sp = np.mean(np.asarray(rows[("spectral", ref_bits)]), axis=0)
            print(f"ratio_map_{m}_vs_spectral={a[0] / sp[0]:.3f} "
                  f"ratio_p10_{m}_vs_spectral={a[1] / sp[1]:.3f} ({ref_bits} bits)")  # fmt: skip
    return 0


def _write_csv(path: Path, archive, q, db, order, cq, cdb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bq, bdb = cq > 0, cdb > 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query", "rank", "path", "distance"])
        for i, qi in enumerate(q):
            for r, j in enumerate(order[i]):
                d = int((bq[i] != bdb[j]).sum())
                w.writerow([archive.path_of(qi), r + 1, archive.path_of(db[j]), d])


if __name__ == "__main__":
    raise SystemExit(main())
