"""Index a 100,000-tile synthetic archive on a Dask ``LocalCluster`` of 1, 2 and 4 workers.

    python bench/distributed.py [--dir /tmp/rsgui-bench-archive-100k] [--n 100000] [--size 64]
                                [--workers 1,2,4] [--chunk-tiles 4096]

The archive is written once, cheaply, by ``bench/archive.py``'s writer (rendered tiles shifted
into GeoTIFF files with a patched header). Each run is :func:`rsgui.services.distributed.
distributed_index_job` with the ``spectral`` method (fitted in this process on 5,000 tiles, then
every tile encoded by the workers, one task per chunk, into a fresh index folder); the cluster is
started before the clock. Printed per run: fit seconds, encode seconds and tiles/s (first task
submitted to last chunk written), total seconds. Then the 2-worker run again with one worker
process killed (SIGKILL) when half the tiles are encoded: its chunks run again elsewhere (the
nanny restarts the worker); its codes are checked identical to the undisturbed run's. The
in-process path (:func:`rsgui.services.indexing.build_index`, one process) is timed for scale.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# this script's folder must not be on the path: its name would shadow the ``distributed`` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from rsgui.archive import Archive  # noqa: E402
from rsgui.services.distributed import distributed_index_job  # noqa: E402


def bench_archive_writer():
    spec = importlib.util.spec_from_file_location("bench_archive", ROOT / "bench" / "archive.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_bench_archive


def run(archive, out: Path, client, chunk_tiles: int, kill_at: float | None = None):
    """(fit s, encode s, total s, index) of one distributed build; with ``kill_at`` one worker
    process is killed when that share of the tiles is encoded."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    t_enc = None
    pids = client.run(os.getpid) if kill_at is not None else {}
    killed = False
    job = distributed_index_job(archive, "spectral", out, client=client, chunk_tiles=chunk_tiles,
                                update=False)  # fmt: skip
    try:
        while True:
            p = next(job)
            if p.stage == "encode" and t_enc is None:
                t_enc = time.perf_counter()
            if p.stage == "write" and "t_done" not in locals():
                t_done = time.perf_counter()
            if (
                kill_at is not None
                and not killed
                and p.stage == "encode"
                and p.total
                and (p.done >= kill_at * p.total)
            ):
                os.kill(next(iter(pids.values())), signal.SIGKILL)
                killed = True
                print(f"  killed worker pid {next(iter(pids.values()))} at {int(p.done)} tiles",
                      file=sys.stderr)  # fmt: skip
    except StopIteration as stop:
        res = stop.value
    total = time.perf_counter() - t0
    return t_enc - t0, t_done - t_enc, total, res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/rsgui-bench-archive-100k")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--chunk-tiles", type=int, default=4096)
    ap.add_argument("--skip-in-process", action="store_true")
    args = ap.parse_args()
    from dask.distributed import Client, LocalCluster

    t = time.perf_counter()
    root = bench_archive_writer()(Path(args.dir), args.n, size=args.size)
    print(f"archive {root}: ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    t = time.perf_counter()
    archive = Archive.open(root)
    print(f"{len(archive)} tiles of {args.size}x{args.size}x{len(archive.band_names)}, opened in "
          f"{time.perf_counter() - t:.1f} s; load average {os.getloadavg()[0]:.2f}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    out_root = Path(tempfile.mkdtemp(prefix="rsgui-dist-bench-"))
    rows = []
    if not args.skip_in_process:
        from rsgui.progress import drive
        from rsgui.services.indexing import build_index, prepare_encoder_job

        t = time.perf_counter()
        enc = drive(prepare_encoder_job(archive, "spectral"))
        fit = time.perf_counter() - t
        t = time.perf_counter()
        build_index(archive, enc)
        enc_s = time.perf_counter() - t
        rows.append(("in-process", 1, fit, enc_s, fit + enc_s, ""))
    ref = None
    for w in [int(x) for x in args.workers.split(",")]:
        cluster = LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=50)  # fmt: skip
        client = Client(cluster)
        try:
            fit, enc_s, total, res = run(archive, out_root / f"w{w}", client, args.chunk_tiles)
            rows.append(("LocalCluster", w, fit, enc_s, total, ""))
            if w == 2:
                ref = res.index.to_hash_index().codes
                fit, enc_s, total, res2 = run(archive, out_root / "killed", client,
                                              args.chunk_tiles, kill_at=0.5)  # fmt: skip
                same = np.array_equal(res2.index.to_hash_index().codes, ref)
                rows.append(("LocalCluster, 1 killed", w, fit, enc_s, total,
                             "identical codes" if same else "CODES DIFFER"))  # fmt: skip
        finally:
            client.close()
            cluster.close()
        print(f"  {w} worker(s) done", file=sys.stderr)
    n = len(archive)
    print(f"{'run':<24} {'workers':>7} {'fit s':>6} {'encode s':>8} {'tiles/s':>8} "
          f"{'total s':>7}  check")  # fmt: skip
    for name, w, fit, enc_s, total, note in rows:
        print(f"{name:<24} {w:>7} {fit:6.1f} {enc_s:8.1f} {n / enc_s:8.0f} {total:7.1f}  {note}")
    print(f"load average after {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    shutil.rmtree(out_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
