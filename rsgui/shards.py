"""The sharded index: an index folder that opens in milliseconds at any size and searches in threads.

Layout of an index folder ``OUT/``::

    manifest.json                 format, method and settings (IndexMeta), shards, index id
    G-00000.codes.npy             (n, nbytes) uint8 packed codes (float index: (n, D) float32)
    G-00000.records.parquet       path, label, footprint, size, mtime_ns per tile (Arrow/Parquet)
    G-00000.mih-ids.npy           multi-index hashing tables (binary shards of MIH_MIN_ROWS on)
    G-00000.mih-offsets.npy
    G-extra.npz                   the encoder's arrays (spectral projection), small

``G`` is the index id (a new one per write): files of an older write are removed only after the
new manifest is in place, and the manifest is written last, so a crash leaves the old index or
the new one, never a mix. Every shard's records file carries the index id and a digest of its
codes file in its Parquet metadata; opening refuses a folder whose halves do not belong together.

Opening reads the manifest, maps the code arrays (``np.load(mmap_mode='r')``) and reads the
Parquet footers: no code and no path is read until a search needs it, so an index of 100M codes
opens in well under a second in a few MB of memory. Records are read by row group on demand.

:class:`ShardedIndex` offers what search needs of :class:`rsgui.index_store.HashIndex` (``meta``,
``len``, ``search``, ``paths[i]``, ``labels[i]``, ``classes``, ``position_of``, ``extra_arrays``).
Binary search runs one thread per shard and merges by (distance, archive position): the same
exact top-k, ties by archive order, as one linear scan (a float index, small by nature, is ranked
in one product so its similarities are the very floats of the one-file index). Binary shards with multi-index hashing tables
(:mod:`rsgui.mih`) answer from the tables when that is cheaper, and by the scan otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rsgui.atomic import atomic_path, atomic_write_text
from rsgui.cosine import cosine_topk, normalise_rows
from rsgui.errors import IndexFileError
from rsgui.hamming import PackedCodes, hamming_topk
from rsgui.index_store import HashIndex, IndexMeta
from rsgui.ranking import drop_excluded, exclusions

FORMAT = "rsgui-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_SHARD_ROWS = 1 << 24  # 16.8M codes: few shards keep the hash tables effective
ROW_GROUP = 65536  # records read at a time
# binary shards of this many codes get multi-index hashing tables and use them (measured:
# bench/scale.py; below it the compiled scan is as fast and needs no tables)
MIH_MIN_ROWS = 1_000_000
# a shard's tables are used when they certify the top-CALIBRATION_K of at least half of
# CALIBRATION_QUERIES of its own codes within the budget (spread-out codes: the scan is cheaper)
CALIBRATION_QUERIES = 16
CALIBRATION_K = 100
_DIGEST_SPAN = 1 << 20  # bytes hashed at each end of a large codes file
_RECORD_COLUMNS = ("path", "label", "footprint", "size", "mtime_ns", "check")
_DICT_ROWS = 2_000_000  # up to this many tiles position_of builds one path lookup table


def is_sharded(path) -> bool:
    """True for an index folder (or its manifest)."""
    p = Path(path)
    return (p / MANIFEST).is_file() or (p.name == MANIFEST and p.is_file())


def open_index(path):
    """A :class:`ShardedIndex` for an index folder, else :meth:`HashIndex.load` (``.npz``)."""
    return ShardedIndex.open(path) if is_sharded(path) else HashIndex.load(path)


def file_digest(path: Path) -> str:
    """sha256 of a file's size and its first and last MiB (all of it when small): cheap to
    check at open, and a swapped or truncated codes file changes it."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as f:
        if size <= 2 * _DIGEST_SPAN:
            h.update(f.read())
        else:
            h.update(f.read(_DIGEST_SPAN))
            f.seek(size - _DIGEST_SPAN)
            h.update(f.read(_DIGEST_SPAN))
    return h.hexdigest()


def records_table(paths, labels=None, footprints=None, stats=None):
    """A records table (pyarrow) of tile paths, labels (None: unlabelled), footprints (lon/lat
    rings or None) and ``stats`` (n, 2) or (n, 3): file size, mtime_ns and content check as the
    archive scanned them (-1, -1, 0 when unknown)."""
    import pyarrow as pa

    n = len(paths)
    labels = [None] * n if labels is None else list(labels)
    st = np.zeros((n, 3), np.int64)
    st[:, :2] = -1
    if stats is not None:
        given = np.asarray(stats, np.int64).reshape(n, -1)
        st[:, : given.shape[1]] = given[:, :3]
    if footprints is None:
        foot = pa.nulls(n, pa.list_(pa.float64()))
    else:
        foot = pa.array(
            [None if f is None else [float(v) for p in f for v in p] for f in footprints],
            pa.list_(pa.float64()),
        )
    return pa.table(
        {
            "path": pa.array(paths, pa.string()),
            "label": pa.array(labels, pa.string()),
            "footprint": foot,
            "size": pa.array(st[:, 0]),
            "mtime_ns": pa.array(st[:, 1]),
            "check": pa.array(st[:, 2]),
        }
    )


class ShardWriter:
    """Writes an index folder shard by shard: :meth:`add` each shard's codes and records in
    archive order, then :meth:`finish` (the manifest, last). Nothing is visible before."""

    def __init__(self, folder, meta: IndexMeta, mih: bool | None = None):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise IndexFileError(f"{self.folder}: exists and is not an index folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.meta = meta
        self.id = uuid.uuid4().hex[:16]
        self.mih = mih  # None: tables for binary shards of MIH_MIN_ROWS codes or more
        self.shards: list[dict] = []
        self.classes: set[str] = set()
        self.count = 0
        self.sorted_paths = True
        self._last_path: str | None = None

    def _name(self, i: int) -> str:
        return f"{self.id}-{i:05d}"

    def add(self, data: np.ndarray, records) -> None:
        """One shard: (n, nbytes) packed codes (or (n, D) float features) and its records table
        (:func:`records_table`)."""
        import pyarrow.parquet as pq

        binary = self.meta.kind == "binary"
        data = np.ascontiguousarray(data, np.uint8 if binary else np.float32)
        n = data.shape[0]
        if records.num_rows != n:
            raise ValueError(f"shard of {n} codes with {records.num_rows} records")
        name = self._name(len(self.shards))
        codes_file = self.folder / f"{name}.codes.npy"
        with atomic_path(codes_file) as tmp, open(tmp, "wb") as f:
            np.save(f, data)
        digest = file_digest(codes_file)
        entry = {"name": name, "count": int(n), "codes": codes_file.name, "digest": digest,
                 "records": f"{name}.records.parquet"}  # fmt: skip
        paths = records.column("path")
        if n:
            first, last = paths[0].as_py(), paths[n - 1].as_py()
            entry.update(first_path=first, last_path=last)
            if self.sorted_paths:
                self.sorted_paths = (self._last_path is None or self._last_path < first) and bool(
                    _is_sorted(paths)
                )
            self._last_path = last
        self.classes |= {v for v in records.column("label").unique().to_pylist() if v is not None}
        tag = {"index_id": self.id, "shard": name, "codes_digest": digest, "count": int(n)}
        table = records.replace_schema_metadata({"rsgui": json.dumps(tag)})
        with atomic_path(self.folder / entry["records"]) as tmp:
            pq.write_table(table, tmp, row_group_size=ROW_GROUP)
        want_mih = self.mih if self.mih is not None else n >= MIH_MIN_ROWS
        if binary and want_mih and n:
            entry["mih"] = self._write_tables(name, data)
        self.shards.append(entry)
        self.count += n

    def _write_tables(self, name: str, data: np.ndarray) -> dict:
        from rsgui import mih

        rows = mih.rows_of(data, self.meta.bits)
        tables = mih.MihTables.build(rows, self.meta.bits)
        # do the tables pay? codes of the shard as queries, as an archive's own tiles would ask
        pick = np.random.default_rng(0).choice(
            len(rows), min(CALIBRATION_QUERIES, len(rows)), False
        )
        ok = mih.mih_topk(rows, tables, rows[np.sort(pick)], CALIBRATION_K, self.meta.bits)[2]
        out = {"starts": tables.starts.tolist(), "lens": tables.lens.tolist(),
               "certified_share": float(ok.mean()), "use": bool(ok.mean() >= 0.5)}  # fmt: skip
        for part in ("ids", "offsets"):
            target = self.folder / f"{name}.mih-{part}.npy"
            with atomic_path(target) as tmp, open(tmp, "wb") as f:
                np.save(f, getattr(tables, part))
            out[part] = target.name
        return out

    def finish(self, extra_arrays: dict | None = None, settings: dict | None = None) -> Path:
        """Write the encoder arrays and the manifest; remove files of earlier writes."""
        extra = None
        if extra_arrays:
            extra = f"{self.id}-extra.npz"
            with atomic_path(self.folder / extra) as tmp, open(tmp, "wb") as f:
                np.savez(f, **{k: np.asarray(v) for k, v in extra_arrays.items()})
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "id": self.id,
            "meta": self.meta.to_dict(), "count": self.count, "shards": self.shards,
            "classes": sorted(self.classes), "paths_sorted": self.sorted_paths,
            "extra_arrays": extra, "settings": dict(settings or {}),
        }  # fmt: skip
        target = self.folder / MANIFEST
        atomic_write_text(target, json.dumps(manifest, indent=1) + "\n")
        keep = {MANIFEST, extra}
        for s in self.shards:
            keep |= {s["codes"], s["records"]}
            if "mih" in s:
                keep |= {s["mih"]["ids"], s["mih"]["offsets"]}
        for p in self.folder.iterdir():
            if p.is_file() and p.name not in keep and _ours(p.name):
                p.unlink(missing_ok=True)
        return target


def _ours(name: str) -> bool:
    """A file an index write makes (``ID-00000.codes.npy``...), not something the user put there."""
    head = name.split("-", 1)[0]
    return len(head) == 16 and all(c in "0123456789abcdef" for c in head)


def _is_sorted(column) -> bool:
    import pyarrow.compute as pc

    if len(column) < 2:
        return True
    a, b = column.slice(0, len(column) - 1), column.slice(1)
    return bool(pc.all(pc.less(a, b)).as_py())


def write_index(
    folder, index: HashIndex, shard_rows: int = DEFAULT_SHARD_ROWS, footprints=None, stats=None,
    mih: bool | None = None, settings: dict | None = None,
) -> Path:  # fmt: skip
    """Write a loaded :class:`HashIndex` as an index folder of ``shard_rows`` codes a shard."""
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be at least 1, got {shard_rows}")
    w = ShardWriter(folder, index.meta, mih=mih)
    if stats is None:
        stats = getattr(index, "tile_stats", None)
    data = index.codes if index.meta.kind == "binary" else index.features
    n = len(index)
    for a in range(0, max(n, 1), shard_rows):
        b = min(a + shard_rows, n)
        w.add(
            data[a:b],
            records_table(
                index.paths[a:b], index.labels[a:b],
                None if footprints is None else footprints[a:b],
                None if stats is None else stats[a:b],
            ),
        )  # fmt: skip
    w.finish(index.extra_arrays, settings)
    return Path(folder)


def convert(old, new, shard_rows: int = DEFAULT_SHARD_ROWS) -> Path:
    """``rsgui-cli index-convert``: an ``.npz`` index (or another folder) rewritten as a folder."""
    src = open_index(old)
    index = src.to_hash_index() if isinstance(src, ShardedIndex) else src
    return write_index(new, index, shard_rows)


class _Shard:
    def __init__(self, folder: Path, entry: dict, offset: int, index_id: str, meta: IndexMeta):
        self.name = entry["name"]
        self.n = int(entry["count"])
        self.offset = offset
        self.entry = entry
        self.folder = folder
        codes_file = folder / entry["codes"]
        rec_file = folder / entry["records"]
        for f in (codes_file, rec_file):
            if not f.is_file():
                raise IndexFileError(f"{f}: shard file is missing; the index folder is incomplete")
        try:
            self.data = np.load(codes_file, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise IndexFileError(f"{codes_file}: not a readable codes file ({exc})") from None
        want = np.uint8 if meta.kind == "binary" else np.float32
        if self.data.ndim != 2 or self.data.shape[0] != self.n or self.data.dtype != want:
            raise IndexFileError(
                f"{codes_file}: holds {self.data.shape} {self.data.dtype}, the manifest says "
                f"{self.n} rows of {np.dtype(want)}; the files do not belong together"
            )
        if file_digest(codes_file) != entry["digest"]:
            raise IndexFileError(
                f"{codes_file}: does not match its manifest (another write's codes?); rebuild "
                "or convert the index again"
            )
        self.records_file = rec_file
        tag = _records_tag(rec_file)
        if (
            tag.get("index_id") != index_id
            or tag.get("codes_digest") != entry["digest"]
            or int(tag.get("count", -1)) != self.n
        ):
            raise IndexFileError(
                f"{rec_file}: belongs to another index than {MANIFEST} (mixed halves); rebuild "
                "the index"
            )
        self.tables = None
        if "mih" in entry:
            from rsgui import mih

            m = entry["mih"]
            self.tables = mih.MihTables(
                np.asarray(m["starts"], np.int64), np.asarray(m["lens"], np.int64),
                np.load(folder / m["offsets"], mmap_mode="r"),
                np.load(folder / m["ids"], mmap_mode="r"),
            )  # fmt: skip
        self._packed: PackedCodes | None = None
        self._file = None
        self._lock = threading.Lock()

    def parquet(self):
        with self._lock:
            if self._file is None:
                import pyarrow.parquet as pq

                self._file = pq.ParquetFile(self.records_file)
            return self._file

    def packed(self, bits: int) -> PackedCodes:
        with self._lock:
            if self._packed is None:
                self._packed = PackedCodes(np.asarray(self.data), bits)
            return self._packed


def _records_tag(path: Path) -> dict:
    import pyarrow.parquet as pq

    try:
        md = pq.read_schema(path).metadata or {}
        return json.loads(md.get(b"rsgui", b"{}"))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise IndexFileError(f"{path}: not a readable records file ({exc})") from None


class _Column:
    """``paths`` / ``labels`` of a sharded index: read by row group on first use."""

    def __init__(self, index: ShardedIndex, name: str):
        self.index, self.name = index, name

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.index.record(int(i))[self.name]

    def __iter__(self):
        for s in self.index.shards:
            for g in range(s.parquet().num_row_groups):
                yield from self.index._group(s, g)[self.name]


class ShardedIndex:
    """An index folder, open: memory-mapped codes, records read on demand, threaded search."""

    def __init__(self, folder: Path, manifest: dict, meta: IndexMeta, shards: list[_Shard],
                 extra_arrays: dict):  # fmt: skip
        self.folder = folder
        self.manifest = manifest
        self.meta = meta
        self.shards = shards
        self.extra_arrays = extra_arrays
        self.id = manifest["id"]
        self.offsets = np.array([s.offset for s in shards] + [sum(s.n for s in shards)], np.int64)
        self.paths = _Column(self, "path")
        self.labels = _Column(self, "label")
        self._groups: OrderedDict = OrderedDict()
        self._glock = threading.Lock()

    @classmethod
    def open(cls, path) -> ShardedIndex:
        folder = Path(path)
        if folder.name == MANIFEST:
            folder = folder.parent
        mpath = folder / MANIFEST
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexFileError(f"{mpath}: index manifest is missing") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexFileError(f"{mpath}: not a readable index manifest ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise IndexFileError(f"{mpath}: not a sharded index manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexFileError(
                f"{mpath}: unknown sharded index version {manifest.get('format_version')!r} "
                f"(this program reads {FORMAT_VERSION})"
            )
        try:
            m = manifest["meta"]
            meta = IndexMeta(
                method=str(m["method"]), band_names=tuple(m["band_names"]), bits=int(m["bits"]),
                kind=m["kind"], normalisation=dict(m.get("normalisation") or {}),
                archive_root=m.get("archive_root"), encoder=dict(m.get("encoder") or {}),
                created=str(m.get("created") or ""),
            )  # fmt: skip
            entries = list(manifest["shards"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFileError(f"{mpath}: incomplete index manifest ({exc})") from None
        shards, offset = [], 0
        for e in entries:
            shards.append(_Shard(folder, e, offset, manifest["id"], meta))
            offset += shards[-1].n
        if offset != int(manifest.get("count", offset)):
            raise IndexFileError(f"{mpath}: shards hold {offset} codes, the manifest says "
                                 f"{manifest['count']}")  # fmt: skip
        extra = {}
        if manifest.get("extra_arrays"):
            try:
                with np.load(folder / manifest["extra_arrays"], allow_pickle=False) as z:
                    extra = {k: z[k] for k in z.files}
            except (OSError, ValueError) as exc:
                raise IndexFileError(
                    f"{folder / manifest['extra_arrays']}: unreadable encoder arrays ({exc})"
                ) from None
        return cls(folder, manifest, meta, shards, extra)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def bits(self) -> int:
        return self.meta.bits

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.manifest.get("classes") or ())

    check_query = HashIndex.check_query
    check_bits = HashIndex.check_bits

    # -- records ---------------------------------------------------------------------------------

    def _locate(self, i: int) -> tuple[_Shard, int]:
        if i < 0 or i >= len(self):
            raise IndexError(f"index position {i} out of range (the index holds {len(self)})")
        s = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return self.shards[s], i - self.shards[s].offset

    def _group(self, shard: _Shard, g: int) -> dict:
        key = (shard.name, g)
        with self._glock:
            if key in self._groups:
                self._groups.move_to_end(key)
                return self._groups[key]
        t = shard.parquet().read_row_group(g, columns=list(_RECORD_COLUMNS))
        cols = {c: t.column(c).to_pylist() for c in ("path", "label", "footprint")}
        for c in ("size", "mtime_ns", "check"):
            cols[c] = t.column(c).to_numpy()
        with self._glock:
            self._groups[key] = cols
            while len(self._groups) > 32:
                self._groups.popitem(last=False)
        return cols

    def record(self, i: int) -> dict:
        """``{'path', 'label', 'footprint'}`` of position ``i`` (footprint: lon/lat ring or None)."""
        shard, j = self._locate(int(i))
        cols = self._group(shard, j // ROW_GROUP)
        r = j % ROW_GROUP
        f = cols["footprint"][r]
        return {"path": cols["path"][r], "label": cols["label"][r],
                "footprint": None if f is None else tuple(zip(f[::2], f[1::2], strict=True))}  # fmt: skip

    @property
    def tile_stats(self) -> np.ndarray | None:
        """(N, 3) size, mtime_ns, content check of each tile when indexed (read on first use),
        None when the index does not know them (converted from an index without them)."""
        if getattr(self, "_stats", None) is None:
            t = self.records(("size", "mtime_ns", "check"))
            st = np.column_stack([t.column(c).to_numpy() for c in ("size", "mtime_ns", "check")])
            self._stats = st.astype(np.int64) if len(st) and (st[:, 0] >= 0).any() else False
        return None if self._stats is False else self._stats

    def records(self, columns=("path", "label", "size", "mtime_ns", "check")):
        """The whole records table (pyarrow), in archive order: for updates and conversion."""
        import pyarrow as pa

        return pa.concat_tables([s.parquet().read(columns=list(columns)) for s in self.shards])

    def position_of(self, path: str) -> int | None:
        """Position of the tile stored as ``path`` (archive-relative), else None."""
        path = str(path)
        if len(self) <= _DICT_ROWS:
            if getattr(self, "_positions", None) is None:
                self._positions = {p: i for i, p in enumerate(self.paths)}
            return self._positions.get(path)
        for s in self.shards:
            e = s.entry
            if s.n == 0 or (
                self.manifest.get("paths_sorted") and not e["first_path"] <= path <= e["last_path"]
            ):
                continue
            for g in range(s.parquet().num_row_groups):
                if self.manifest.get("paths_sorted"):
                    st = s.parquet().metadata.row_group(g).column(0).statistics
                    if st is not None and st.has_min_max and not st.min <= path <= st.max:
                        continue
                col = self._group(s, g)["path"]
                if path in col:
                    return s.offset + g * ROW_GROUP + col.index(path)
        return None

    # -- search ----------------------------------------------------------------------------------

    def search(self, query_codes: np.ndarray, k: int, exclude=None):
        """Exact top-k for (Q, bits) or (bits,) query codes, ties by archive order (as
        :meth:`HashIndex.search`, same results); ``exclude``: per query a position to leave out."""
        from rsgui.codes import pack_codes

        q = self.check_bits(query_codes)
        ex = exclusions(exclude, q.shape[0], len(self))
        kk = int(k) if ex is None else min(int(k), len(self) - 1)
        found = self.search_packed(
            pack_codes(q) if self.meta.kind == "binary" else q, kk if ex is None else kk + 1
        )
        return found if ex is None else drop_excluded(ex, kk, *found)

    def search_packed(self, queries: np.ndarray, k: int, threads: int | None = None):
        """Top-k for packed query codes (float index: features), every shard in its own thread."""
        if int(k) < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        k = min(int(k), len(self))
        binary = self.meta.kind == "binary"
        nq = queries.shape[0] if queries.ndim == 2 else 1
        if k == 0 or not self.shards:
            return np.zeros((nq, k), np.int64), np.zeros(
                (nq, k), np.int32 if binary else np.float32
            )

        if not binary:  # one product over all features: the same floats as HashIndex.search
            return cosine_topk(self._unit_features(), queries, k, normalised=True)

        def one(s: _Shard):
            i, d = shard_topk(s, queries, min(k, s.n), self.meta.bits)
            return i + s.offset, d

        work = [s for s in self.shards if s.n]
        threads = threads or min(len(work), os.cpu_count() or 1)
        if len(work) == 1 or threads == 1:
            parts = [one(s) for s in work]
        else:
            with ThreadPoolExecutor(threads) as pool:
                parts = list(pool.map(one, work))
        idx = np.concatenate([p[0] for p in parts], axis=1)
        val = np.concatenate([p[1] for p in parts], axis=1)
        primary = val if binary else -val
        order = np.lexsort((idx, primary), axis=-1)[:, :k]  # by score, ties by archive position
        return np.take_along_axis(idx, order, 1), np.take_along_axis(val, order, 1)

    def _unit_features(self) -> np.ndarray:
        with self._glock:
            if getattr(self, "_unit", None) is None:
                self._unit = normalise_rows(
                    np.concatenate([np.asarray(s.data) for s in self.shards])
                )
            return self._unit

    def to_hash_index(self) -> HashIndex:
        """The whole index in memory (for evaluation and conversion to ``.npz``)."""
        t = self.records(("path", "label"))
        data = np.concatenate([np.asarray(s.data) for s in self.shards]) if self.shards else None
        kw = {"codes": data} if self.meta.kind == "binary" else {"features": data}
        return HashIndex(self.meta, t.column("path").to_pylist(), t.column("label").to_pylist(),
                         extra_arrays=self.extra_arrays, **kw)  # fmt: skip


def shard_topk(shard: _Shard, queries: np.ndarray, k: int, bits: int):
    """One shard's exact top-k: multi-index hashing when the shard has tables (and numba), the
    compiled scan for queries it cannot certify within its budget."""
    if shard.tables is not None and shard.entry["mih"].get("use", True) and k > 0:
        from rsgui import mih

        if mih.available():
            rows = mih.rows_of(shard.data, bits)
            idx, dist, ok = mih.mih_topk(rows, shard.tables, mih.rows_of(queries, bits), k, bits)
            if not ok.all():
                bad = np.flatnonzero(~ok)
                i2, d2 = hamming_topk(shard.packed(bits), queries[bad], k)
                idx[bad], dist[bad] = i2, d2
            return idx, dist
    return hamming_topk(shard.packed(bits), queries, k)
