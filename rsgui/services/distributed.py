"""Index an archive on a Dask cluster into a sharded index folder (:mod:`rsgui.shards`).

The cluster is an embedded ``LocalCluster`` on this machine, or an existing one given by its
scheduler address (``tcp://host:8786``); its workers must see the archive's files at the same
paths. The encoder is prepared here exactly as :func:`rsgui.services.indexing.index_job` does
(``spectral`` fitted on a sample of the archive, a trained model loaded and checked) and sent to
every worker once: the spectral encoder's state, or a trained model's file bytes, broadcast with
``scatter``. The opened archive (headers only) is broadcast the same way.

The tiles to encode are cut into chunks (a multiple of the batch size, so each batch is the one
the in-process path encodes and the codes are byte-identical). Each chunk is one task that writes
one chunk file atomically, named by a digest of the encoder and of the chunk's tiles (paths, sizes,
modification times): a task re-run after its worker died rewrites the same file, and a job run
again after a crash or a cancel finds the chunks already written and skips them. Progress counts
each chunk once, when its task completes. The index folder is then assembled in archive order
(ties keep falling by archive order) and the chunk files removed.

Incremental: when ``out`` already holds an index of the same method made by the same encoder,
that encoder is kept (a spectral index is not refitted), every tile whose path, size and
modification time are unchanged keeps its code, only new or changed tiles are encoded and tiles
no longer in the archive are dropped. The result equals a full build with that encoder.

Dask is imported only when a job runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsgui.atomic import atomic_path
from rsgui.codes import pack_codes
from rsgui.errors import IndexFileError, JobError
from rsgui.progress import Job, Progress
from rsgui.services.indexing import index_meta, model_file, prepare_encoder_job
from rsgui.shards import DEFAULT_SHARD_ROWS, ShardedIndex, ShardWriter, is_sharded, records_table

CHUNK_BATCHES = 16  # batches per chunk (one task): 4096 tiles at the default batch size
_STAGING = ".chunks"


@dataclass
class DistributedResult:
    """A finished sharded index: its folder and what the run did."""

    path: Path
    n_tiles: int
    encoded: int  # tiles encoded by this run
    reused: int  # codes kept from the previous index
    removed: int  # tiles of the previous index no longer in the archive
    method: str
    workers: int
    elapsed_s: float
    index: ShardedIndex


def connect(scheduler: str | None = None, n_workers: int | None = None, processes: bool = True):
    """``(client, cluster)``: a client of the cluster at ``scheduler``, else of a new
    ``LocalCluster`` of ``n_workers`` one-thread workers (``cluster`` is then to be closed)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=10), None
        except (OSError, TimeoutError) as exc:
            raise JobError(f"{scheduler}: no Dask scheduler answers there ({exc})") from None
    n = n_workers or max(1, min(4, os.cpu_count() or 1))
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=":0",
        silence_logs=40,
    )  # fmt: skip
    return Client(cluster), cluster


def distributed_index_job(
    archive,
    method: str,
    out: str | Path,
    *,
    model: str | Path | None = None,
    bands: str | None = None,
    bits: int | None = None,
    max_fit_tiles: int = 5000,
    seed: int = 0,
    batch_size: int = 256,
    scheduler: str | None = None,
    client=None,
    n_workers: int | None = None,
    processes: bool = True,
    chunk_tiles: int | None = None,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    mih: bool | None = None,
    update: bool = True,
) -> Job[DistributedResult]:
    """Index ``archive`` with ``method`` on a Dask cluster into the folder ``out``.

    ``client``: an existing ``dask.distributed.Client`` (kept open); else ``scheduler`` (an
    address) or an embedded ``LocalCluster`` of ``n_workers`` (``processes=False``: threads of
    this process). ``chunk_tiles``: tiles per task (rounded up to whole batches). ``update``:
    reuse the codes of an index already in ``out`` made by the same encoder. Yields
    :class:`Progress` (stage ``"encode"``: tiles/s, ETA, ``values['workers']``); closing the job
    cancels the cluster's tasks and leaves ``out`` as it was."""
    t0 = time.perf_counter()
    out = Path(out)
    old = _previous(out, method) if update else None
    encoder = None
    if old is not None and method == "spectral" and _same_settings(old, archive, bands, bits):
        from rsgui.services.search import encoder_for_index

        encoder = encoder_for_index(old)  # keep the fitted encoder: old codes stay valid
    if encoder is None:
        encoder = yield from prepare_encoder_job(
            archive, method, model=model, bands=bands, bits=bits, max_fit_tiles=max_fit_tiles,
            seed=seed, batch_size=batch_size,
        )  # fmt: skip
    else:
        from rsgui.services.indexing import check_archive, check_encoder

        check_archive(archive)
        check_encoder(archive, encoder)
    meta = index_meta(archive, encoder, model)
    extra = encoder.state_arrays() if hasattr(encoder, "state_arrays") else {}
    payload = _payload(encoder, model)
    fingerprint = payload["fingerprint"]
    if old is not None and old.manifest.get("settings", {}).get("fingerprint") != fingerprint:
        old = None  # made by another encoder: nothing to reuse

    n = len(archive)
    stats = _stats(archive)
    old_pos = _reusable(old, archive, stats)
    todo = np.flatnonzero(old_pos < 0)
    if old is not None and len(old) == n and np.array_equal(old_pos, np.arange(n)):
        elapsed = time.perf_counter() - t0  # nothing changed: the index stays as it is
        return DistributedResult(out, n, 0, n, 0, encoder.method, 0, elapsed, old)
    step = max(1, batch_size) * max(
        1, -(-(chunk_tiles or batch_size * CHUNK_BATCHES) // batch_size)
    )
    chunks = [todo[a : a + step] for a in range(0, len(todo), step)]
    staging = out / _STAGING
    ids = [_chunk_id(fingerprint, archive, stats, c) for c in chunks]

    counted: dict[str, int] = {}
    workers = 0
    owned = None
    futures: list = []
    if chunks:
        if client is None:
            yield Progress(0, len(todo), "starting the Dask cluster", stage="encode")
            client, owned = connect(scheduler, n_workers, processes)
        try:
            workers = _n_workers(client)
            staging.mkdir(parents=True, exist_ok=True)
            # each in a list: a dict given to scatter would be scattered value by value under
            # its own keys ("encoder", "root"...), which another run on the same cluster
            # overwrites or releases under it
            [archive_f] = client.scatter([_archive_blob(archive)], broadcast=True, hash=False)
            [payload_f] = client.scatter([payload], broadcast=True, hash=False)
            futures = [
                client.submit(
                    _encode_chunk, archive_f, payload_f, c, cid, str(staging), batch_size,
                    key=f"rsgui-encode-{cid}", pure=False, retries=0,
                )
                for c, cid in zip(chunks, ids, strict=True)
            ]  # fmt: skip
            yield from _watch(client, futures, counted, len(todo), t0)
            workers = max(workers, _n_workers(client))
        except BaseException:
            if futures:
                client.cancel(futures)
            raise
        finally:
            if owned is not None:
                client.close()
                owned.close()
    yield Progress(len(todo), len(todo), "writing the index shards", stage="write")
    _assemble(out, archive, meta, extra, fingerprint, old, old_pos, stats, chunks, ids, staging,
              shard_rows, mih)  # fmt: skip
    removed = 0 if old is None else len(old) - int((old_pos >= 0).sum())
    index = ShardedIndex.open(out)
    return DistributedResult(out, n, len(todo), n - len(todo), removed, encoder.method, workers,
                             time.perf_counter() - t0, index)  # fmt: skip


def cluster_spectral_index_job(archive, bits: int, scheduler: str, bands: str | None = None):
    """The application's "build index" on a cluster: ``scheduler`` an address, or ``"local"``
    for an embedded ``LocalCluster``; the folder ``spectral-BANDS-BITS.shards`` is saved where
    the archive's indexes are found. Returns an :class:`~rsgui.services.indexing.IndexResult`."""
    from rsgui.index_store import writable_index_dir
    from rsgui.services.indexing import IndexResult, default_bands

    bands = bands or default_bands(archive)
    out = writable_index_dir(Path(archive.root)) / f"spectral-{bands}-{bits}.shards"
    address = None if scheduler.strip().lower() in ("", "local") else scheduler.strip()
    res = yield from distributed_index_job(archive, "spectral", out, bands=bands, bits=bits,
                                           scheduler=address)  # fmt: skip
    return IndexResult(res.path, res.n_tiles, res.method, res.index)


def _same_settings(old: ShardedIndex, archive, bands, bits) -> bool:
    if bits is not None and int(bits) != old.meta.bits:
        return False
    if bands is not None:
        from rsgui.bands import resolve_band_set

        try:
            return tuple(resolve_band_set(bands, archive.band_names)) == old.meta.band_names
        except ValueError:
            return False
    return True


def _previous(out: Path, method: str) -> ShardedIndex | None:
    if not is_sharded(out):
        if out.exists() and (not out.is_dir() or any(p.name != _STAGING for p in out.iterdir())):
            raise JobError(f"{out}: exists and is not an index folder; choose another --out")
        return None
    try:
        old = ShardedIndex.open(out)
    except IndexFileError:
        return None  # unreadable: rebuilt from scratch
    return old if old.meta.method == method else None


def _n_workers(client) -> int:
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - only for the progress line
        return 0


def _watch(client, futures, counted: dict, total: int, t0: float):
    """Yield progress until every chunk task is done; each chunk counts once, when it ends."""
    from dask.distributed import wait

    pending = set(futures)
    t_enc = time.perf_counter()
    last_info = 0.0
    workers = _n_workers(client)
    while pending:
        try:
            done, pending = wait(list(pending), timeout=0.25, return_when="FIRST_COMPLETED")
            pending = set(pending)
        except TimeoutError:
            done = set()
        for f in done:
            if f.status == "error":
                exc = f.exception()
                raise exc if isinstance(exc, Exception) else JobError(str(exc))
            if f.status == "cancelled":
                raise JobError("the cluster cancelled an encoding task (scheduler restarted?)")
            cid, count = f.result()
            counted.setdefault(cid, count)
        now = time.perf_counter()
        if now - last_info > 1.0:
            workers, last_info = _n_workers(client), now
        got = sum(counted.values())
        rate = got / (now - t_enc) if now > t_enc and got else None
        eta = (total - got) / rate if rate else None
        yield Progress(got, total, f"encoding on {workers} worker(s)", stage="encode", rate=rate,
                       eta_s=eta, values={"workers": float(workers)})  # fmt: skip


# -- what the workers run --------------------------------------------------------------------------


def _payload(encoder, model) -> dict:
    """What every worker needs to encode: a trained model's files (bytes), else the encoder."""
    found = model_file(encoder, model)
    if found is not None:
        files = {p.name: p.read_bytes() for p in (found, found.with_suffix(".json")) if p.is_file()}
        h = hashlib.sha256()
        for name in sorted(files):
            h.update(name.encode() + hashlib.sha256(files[name]).digest())
        return {"kind": "model", "method": encoder.method, "model": found.name, "files": files,
                "fingerprint": h.hexdigest()[:32]}  # fmt: skip
    h = hashlib.sha256(json.dumps(encoder.describe(), sort_keys=True, default=str).encode())
    h.update(encoder.method.encode() + ",".join(encoder.band_names).encode())
    h.update(json.dumps(encoder.normalisation.to_dict(), sort_keys=True).encode())
    for k, v in sorted(
        (encoder.state_arrays() if hasattr(encoder, "state_arrays") else {}).items()
    ):
        h.update(k.encode() + np.ascontiguousarray(v).tobytes())
    return {"kind": "encoder", "encoder": encoder, "fingerprint": h.hexdigest()[:32]}


_worker_encoders: dict[str, object] = {}
_worker_lock = threading.Lock()


def _worker_encoder(payload: dict):
    """The payload's encoder, made once per worker process (a model file is written once)."""
    if payload["kind"] == "encoder":
        return payload["encoder"]
    key = payload["fingerprint"]
    with _worker_lock:
        if key not in _worker_encoders:
            from rsgui.encoders import load_trained_encoder

            folder = Path(tempfile.mkdtemp(prefix="rsgui-model-"))
            for name, data in payload["files"].items():
                (folder / name).write_bytes(data)
            _worker_encoders[key] = load_trained_encoder(
                folder / payload["model"], payload["method"]
            )
        return _worker_encoders[key]


def _archive_blob(archive) -> dict:
    """What a worker needs to open the same archive itself: its folder and the settings it was
    opened with, plus a digest of its tile list to prove the worker sees the same tiles. Plain
    data (no pickled objects): a worker reads the archive's own manifest cache, so the open is
    as cheap as the client's second open."""
    paths = "\n".join(r.path for r in archive.records).encode("utf-8", "surrogateescape")
    spec = {
        "root": str(archive.root),
        "preset": archive.preset,
        "band_names": list(archive.band_names),
        "normalisation": archive.normalisation.to_dict(),
        "n": len(archive),
        "digest": hashlib.sha256(paths).hexdigest(),
    }
    spec["key"] = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]
    return spec


def _worker_archive(sent: dict):
    import gc

    from rsgui.archive import Archive
    from rsgui.bands import Normalisation

    with _worker_lock:
        if sent["key"] not in _worker_archives:
            _worker_archives.clear()
            arc = Archive.open(
                sent["root"], preset=sent["preset"], band_names=sent["band_names"],
                normalisation=Normalisation.from_dict(sent["normalisation"]),
            )  # fmt: skip
            paths = "\n".join(r.path for r in arc.records).encode("utf-8", "surrogateescape")
            if len(arc) != sent["n"] or hashlib.sha256(paths).hexdigest() != sent["digest"]:
                raise JobError(
                    f"{sent['root']}: a worker sees {len(arc)} tiles there, the client "
                    f"{sent['n']} (or other files); workers need the same archive at the same path"
                )
            _worker_archives[sent["key"]] = arc
            gc.freeze()  # the records stay: later collections need not scan them
        return _worker_archives[sent["key"]]


_worker_archives: dict[str, object] = {}


def _encode_chunk(sent_archive, payload, positions, chunk_id: str, staging: str, batch_size: int):
    """Encode the tiles at ``positions`` into ``staging/chunk-ID.npy`` (atomically); a chunk
    already written by an earlier run of this task is kept."""
    target = Path(staging) / f"chunk-{chunk_id}.npy"
    if _chunk_ok(target, len(positions)):
        return chunk_id, len(positions)
    archive = _worker_archive(sent_archive)
    encoder = _worker_encoder(payload)
    parts = []
    for a in range(0, len(positions), batch_size):
        batch = archive.read(positions[a : a + batch_size], bands=list(encoder.band_names))
        codes = np.asarray(encoder.encode(batch.pixels), dtype=np.float32)
        parts.append(pack_codes(codes) if encoder.kind == "binary" else codes)
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        np.save(f, np.concatenate(parts))
    return chunk_id, len(positions)


def _chunk_ok(path: Path, n: int) -> bool:
    try:
        return np.load(path, mmap_mode="r").shape[0] == n
    except (OSError, ValueError):
        return False


# -- bookkeeping -------------------------------------------------------------------------------


def _stats(archive) -> np.ndarray:
    """(N, 3) size, mtime_ns and content check of each tile as scanned (the archive keeps
    them; without them, size and mtime now, check 0: unknown)."""
    if hasattr(archive, "tile_stats"):
        return np.asarray(archive.tile_stats(), np.int64).reshape(len(archive), 3)
    out = np.zeros((len(archive), 3), np.int64)
    out[:, :2] = -1
    for i in range(len(archive)):
        try:
            s = os.stat(archive.path_of(i))
            out[i, :2] = (s.st_size, s.st_mtime_ns)
        except OSError:
            pass
    return out


def _reusable(old: ShardedIndex | None, archive, stats: np.ndarray) -> np.ndarray:
    """Per archive tile, the position of its unchanged code in ``old`` (-1: to encode)."""
    n = len(archive)
    pos = np.full(n, -1, np.int64)
    if old is None:
        return pos
    t = old.records(("path", "size", "mtime_ns", "check"))
    known = {p: i for i, p in enumerate(t.column("path").to_pylist())}
    was = np.column_stack([t.column(c).to_numpy() for c in ("size", "mtime_ns", "check")])
    for i, r in enumerate(archive.records):
        j = known.get(r.path)
        if j is not None and stats[i, 0] >= 0 and np.array_equal(was[j], stats[i]):
            pos[i] = j
    return pos


def _chunk_id(fingerprint: str, archive, stats: np.ndarray, positions: np.ndarray) -> str:
    h = hashlib.sha256(fingerprint.encode())
    for i in positions.tolist():
        h.update(archive.records[i].path.encode() + b"\0")
    h.update(np.ascontiguousarray(stats[positions]).tobytes())
    return h.hexdigest()[:24]


def _gather(old: ShardedIndex, positions: np.ndarray) -> np.ndarray:
    """Codes of ``old`` at sorted-or-not ``positions``."""
    out = None
    for s in old.shards:
        sel = np.flatnonzero((positions >= s.offset) & (positions < s.offset + s.n))
        if out is None:
            out = np.empty((len(positions), s.data.shape[1]), s.data.dtype)
        if sel.size:
            out[sel] = s.data[positions[sel] - s.offset]
    return out


def _assemble(out, archive, meta, extra, fingerprint, old, old_pos, stats, chunks, ids, staging,
              shard_rows, mih) -> None:  # fmt: skip
    n = len(archive)
    chunk_of = np.full(n, -1, np.int64)
    row_of = np.zeros(n, np.int64)
    for j, c in enumerate(chunks):
        chunk_of[c] = j
        row_of[c] = np.arange(len(c))
    loaded = {j: np.load(staging / f"chunk-{cid}.npy", mmap_mode="r") for j, cid in enumerate(ids)}
    width = (meta.bits + 7) // 8 if meta.kind == "binary" else meta.bits
    dtype = np.uint8 if meta.kind == "binary" else np.float32
    writer = ShardWriter(out, meta, mih=mih)
    records = archive.records
    for a in range(0, max(n, 1), shard_rows):
        b = min(a + shard_rows, n)
        data = np.empty((b - a, width), dtype)
        part_old = old_pos[a:b]
        m = part_old >= 0
        if m.any():
            data[m] = _gather(old, part_old[m])
        part_chunk = chunk_of[a:b]
        for j in np.unique(part_chunk[part_chunk >= 0]).tolist():
            sel = np.flatnonzero(part_chunk == j)
            data[sel] = loaded[j][row_of[a:b][sel]]
        recs = records[a:b]
        writer.add(
            data,
            records_table(
                [r.path for r in recs], [r.label for r in recs],
                [r.georef.footprint_lonlat for r in recs], stats[a:b],
            ),
        )  # fmt: skip
    writer.finish(extra, {"fingerprint": fingerprint, "archive_root": meta.archive_root})
    del loaded
    shutil.rmtree(staging, ignore_errors=True)
