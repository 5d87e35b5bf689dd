"""The index store: archive codes (or float features), tile paths, labels, how they were made, and
where an archive's indexes are kept.

Saved as two files side by side: ``PATH.npz`` (arrays, loaded with ``allow_pickle=False``) and
``PATH.json`` (metadata, written last so a readable JSON means the arrays are complete). The
metadata records the method, band set and normalisation so a query encoded any other way is refused
instead of silently returning nonsense.

An archive's indexes live in ``ROOT/.rsgui/indexes`` or, for an archive that cannot be written,
in its folder of the user cache (:func:`index_dirs`); :func:`scan_indexes` lists them from their
JSON halves alone, without reading the arrays.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from rsgui.atomic import locked, new_pair_id, resolve_pair, save_pair
from rsgui.bands import BAND_SETS
from rsgui.codes import n_bytes, pack_codes
from rsgui.cosine import cosine_topk, normalise_rows
from rsgui.errors import IndexFileError, IndexMismatchError
from rsgui.hamming import PackedCodes, hamming_topk
from rsgui.ranking import drop_excluded, exclusions
from rsgui.safeload import load_npz, read_json

log = logging.getLogger(__name__)

FORMAT = "rsgui-index"
FORMAT_VERSION = 1
_EXTRA = "extra__"


@dataclass
class IndexMeta:
    """How the codes of an index were made."""

    method: str
    band_names: tuple[str, ...]
    bits: int
    kind: Literal["binary", "float"] = "binary"
    normalisation: dict = field(default_factory=dict)
    archive_root: str | None = None
    encoder: dict = field(default_factory=dict)
    created: str = ""

    def __post_init__(self):
        self.band_names = tuple(self.band_names)
        self.bits = int(self.bits)
        if self.kind not in ("binary", "float"):
            raise ValueError(f"kind must be 'binary' or 'float', got {self.kind!r}")
        if not self.created:
            self.created = datetime.now(UTC).isoformat(timespec="seconds")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["band_names"] = list(self.band_names)
        return d


def describe_bands(band_names) -> str:
    """Readable band set: ``ms10 (B02..B12)``, ``rgb (B04, B03, B02)`` or the names themselves."""
    bands = tuple(band_names)
    listed = ", ".join(bands) if len(bands) <= 3 else f"{bands[0]}..{bands[-1]}"
    for name, members in BAND_SETS.items():
        if members is not None and tuple(members) == bands:
            return f"{name} ({listed})"
    return f"{len(bands)} bands ({listed})" if len(bands) > 3 else listed or "no bands"


def index_paths(path) -> tuple[Path, Path]:
    """``(PATH.npz, PATH.json)`` for ``PATH``, ``PATH.npz`` or ``PATH.json``."""
    p = Path(path)
    if p.suffix.lower() in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


class HashIndex:
    """Codes of every archive tile with their paths, labels and metadata; exact top-k search."""

    def __init__(
        self,
        meta: IndexMeta,
        paths: list[str],
        labels: list[str | None],
        codes: np.ndarray | None = None,
        features: np.ndarray | None = None,
        extra_arrays: dict[str, np.ndarray] | None = None,
        tile_stats: np.ndarray | None = None,
        label_sets: np.ndarray | None = None,
        label_names: tuple[str, ...] | list[str] = (),
    ):
        self.meta = meta
        self.paths = [str(p) for p in paths]
        # per tile (size, mtime_ns, content check) when it was encoded: what tells a changed
        # archive apart (:func:`rsgui.services.indexing.index_changes`); None for older indexes
        self.tile_stats = None if tile_stats is None else np.asarray(tile_stats, np.int64)
        if self.tile_stats is not None and self.tile_stats.shape != (len(self.paths), 3):
            raise ValueError(
                f"tile stats must be ({len(self.paths)}, 3), got {self.tile_stats.shape}"
            )
        self.labels = list(labels) if labels is not None else [None] * len(self.paths)
        self.extra_arrays = dict(extra_arrays or {})
        if meta.kind == "binary":
            if codes is None:
                raise ValueError("a binary index needs packed codes")
            codes = np.ascontiguousarray(codes, dtype=np.uint8)
            if codes.ndim != 2 or codes.shape[1] != n_bytes(meta.bits):
                raise ValueError(
                    f"{meta.bits}-bit packed codes must be (N, {n_bytes(meta.bits)}), got {codes.shape}"
                )
            n = codes.shape[0]
        else:
            if features is None:
                raise ValueError("a float index needs features")
            features = np.ascontiguousarray(features, dtype=np.float32)
            if features.ndim != 2 or features.shape[1] != meta.bits:
                raise ValueError(f"features must be (N, {meta.bits}), got {features.shape}")
            n = features.shape[0]
        if len(self.paths) != n or len(self.labels) != n:
            raise ValueError(f"{n} codes but {len(self.paths)} paths and {len(self.labels)} labels")
        self.codes = codes
        self.features = features
        # multi-label ground truth (BigEarthNet): (N, L) bool over label_names, else None;
        # evaluation then counts a result relevant when it shares a label with the query
        self.label_sets, self.label_names = _checked_label_sets(label_sets, label_names, n)
        self._packed: PackedCodes | None = None
        self._unit: np.ndarray | None = None
        self._positions: dict[str, int] | None = None

    @classmethod
    def from_codes(
        cls,
        codes: np.ndarray,
        paths: list[str],
        labels: list[str | None] | None,
        meta: IndexMeta,
        extra_arrays: dict[str, np.ndarray] | None = None,
        tile_stats: np.ndarray | None = None,
        label_sets: np.ndarray | None = None,
        label_names: tuple[str, ...] | list[str] = (),
    ) -> HashIndex:
        """From encoder output (N, bits): binarised by sign and packed, or kept as float features.
        ``label_sets``/``label_names``: an archive's multi-label ground truth, if it has one."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != meta.bits:
            raise ValueError(f"codes must be (N, {meta.bits}), got {codes.shape}")
        labels = labels if labels is not None else [None] * len(paths)
        more = {"extra_arrays": extra_arrays, "tile_stats": tile_stats, "label_sets": label_sets,
                "label_names": label_names}  # fmt: skip
        if meta.kind == "binary":
            return cls(meta, paths, labels, codes=pack_codes(codes), **more)
        return cls(meta, paths, labels, features=codes.astype(np.float32), **more)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def multilabel(self) -> bool:
        """True when the index holds label sets (several labels per tile) to evaluate with."""
        return self.label_sets is not None and len(self.label_names) > 0

    def with_label_sets(
        self, label_sets: np.ndarray | None, label_names: tuple[str, ...] | list[str]
    ) -> HashIndex:
        """This index with the archive's label sets attached (checked), for an index built by
        code that did not pass them; returns ``self``."""
        self.label_sets, self.label_names = _checked_label_sets(label_sets, label_names, len(self))
        return self

    def labelled_positions(self) -> np.ndarray:
        """Positions of the tiles with ground truth: a non-empty label set, else a label."""
        if self.multilabel:
            return np.flatnonzero(self.label_sets.any(axis=1))
        return np.flatnonzero(self.label_ids() >= 0)

    def tile_label_names(self, i: int) -> list[str]:
        """Every label of tile ``i``: its label set when there is one, else its single label."""
        if self.label_sets is not None:
            return [self.label_names[j] for j in np.flatnonzero(self.label_sets[i])]
        return [] if self.labels[i] is None else [self.labels[i]]

    @property
    def classes(self) -> tuple[str, ...]:
        """Sorted distinct labels (``()`` when unlabelled)."""
        return tuple(sorted({lab for lab in self.labels if lab is not None}))

    def position_of(self, path: str) -> int | None:
        """Position of the tile stored as ``path`` (relative to the archive root), else None."""
        if self._positions is None:
            self._positions = {p: i for i, p in enumerate(self.paths)}
        return self._positions.get(path)

    def label_ids(self) -> np.ndarray:
        """(N,) int64 position of each label in :attr:`classes`, -1 when unlabelled."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        return np.array([lookup.get(lab, -1) for lab in self.labels], dtype=np.int64)

    # -- queries ---------------------------------------------------------------------------------

    def check_query(self, method: str, band_names) -> None:
        """Refuse queries encoded by another method or from another band set than the index."""
        bands = tuple(band_names)
        if method != self.meta.method or bands != self.meta.band_names:
            raise IndexMismatchError(
                f"index was built with method {self.meta.method!r} on bands "
                f"{describe_bands(self.meta.band_names)}, the query uses {method!r} on "
                f"{describe_bands(bands)}"
            )

    def check_bits(self, query_codes: np.ndarray) -> np.ndarray:
        """(Q, bits) array of query codes, refused when its length differs from the index's."""
        q = np.asarray(query_codes)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.meta.bits:
            got = q.shape[1] if q.ndim == 2 else q.shape
            raise IndexMismatchError(
                f"index holds {self.meta.bits}-{'bit codes' if self.meta.kind == 'binary' else 'dimensional features'}"
                f" (method {self.meta.method!r}), the query has {got}"
            )
        return q

    def search(
        self, query_codes: np.ndarray, k: int, exclude=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k for (Q, bits) or (bits,) query codes, ties by archive order; ``exclude``:
        per query an archive position left out of its results (-1: none).

        Binary index: ``(idx (Q, k) int64, Hamming distance (Q, k) int32)``, ascending.
        Float index: ``(idx, cosine similarity (Q, k) float32)``, descending."""
        q = self.check_bits(query_codes)
        ex = exclusions(exclude, q.shape[0], len(self))
        kk = int(k) if ex is None else min(int(k), len(self) - 1)
        kk_search = kk if ex is None else kk + 1
        if self.meta.kind == "binary":
            found = hamming_topk(self.packed(), pack_codes(q), kk_search)
        else:
            found = cosine_topk(self.unit_features(), q, kk_search, normalised=True)
        return found if ex is None else drop_excluded(ex, kk, *found)

    def unit_features(self) -> np.ndarray:
        """Float features scaled to unit length (computed on first use)."""
        if self._unit is None:
            self._unit = normalise_rows(self.features)
        return self._unit

    def packed(self) -> PackedCodes:
        """Codes prepared for scanning (built on first use)."""
        if self._packed is None:
            self._packed = PackedCodes(self.codes, self.meta.bits)
        return self._packed

    # -- files -----------------------------------------------------------------------------------

    def save(self, path) -> Path:
        """Write ``PATH.npz`` then ``PATH.json`` atomically; returns the .npz path."""
        npz_path, json_path = index_paths(path)
        arrays: dict[str, np.ndarray] = {
            "paths": np.array(self.paths, dtype=str).reshape(len(self)),
            "labels": np.array([lab or "" for lab in self.labels], dtype=str).reshape(len(self)),
            "has_label": np.array([lab is not None for lab in self.labels], dtype=bool),
        }
        if self.meta.kind == "binary":
            arrays["codes"] = self.codes
        else:
            arrays["features"] = self.features
        for name, arr in self.extra_arrays.items():
            arr = np.asarray(arr)
            if arr.dtype == object:
                raise ValueError(
                    f"extra array {name!r} holds Python objects; only numbers are saved"
                )
            arrays[_EXTRA + name] = arr
        if self.tile_stats is not None:
            arrays["tile_stats"] = np.asarray(self.tile_stats, dtype=np.int64)
        if self.label_sets is not None:  # packed: 590,000 x 43 labels take 3.2 MB, not 25
            arrays[_LABEL_SETS] = np.packbits(self.label_sets, axis=1).reshape(len(self), -1)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.meta.to_dict()}
        if self.label_sets is not None:
            meta["label_names"] = list(self.label_names)
        meta.update(count=len(self), arrays=npz_path.name, extra_arrays=sorted(self.extra_arrays))
        # one id in both halves ties them; the lock keeps a second writer from mixing them
        meta["pair_id"] = pair = new_pair_id()
        arrays["pair_id"] = np.array(pair)

        def write_arrays(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        save_pair(npz_path, write_arrays, json_path, text, pair)
        return npz_path

    @classmethod
    def load(cls, path) -> HashIndex:
        """Read an index, refusing files that are missing, foreign, pickled or inconsistent."""
        npz_path, json_path = index_paths(path)
        meta_d, arrays = _read_pair(json_path, npz_path)
        _check_finite(npz_path, arrays)
        try:
            if not isinstance(meta_d["method"], str) or not isinstance(meta_d["band_names"], list):
                raise ValueError("method or band names missing")
            if not all(isinstance(b, str) for b in meta_d["band_names"]):
                raise ValueError(f"band names {meta_d['band_names']!r} are not names")
            if type(meta_d["bits"]) is not int or meta_d["bits"] < 1:
                raise ValueError(f"bits {meta_d['bits']!r} is not a positive integer")
            meta = IndexMeta(
                method=str(meta_d["method"]),
                band_names=tuple(meta_d["band_names"]),
                bits=int(meta_d["bits"]),
                kind=meta_d["kind"],
                normalisation=dict(meta_d.get("normalisation") or {}),
                archive_root=meta_d.get("archive_root"),
                encoder=dict(meta_d.get("encoder") or {}),
                created=str(meta_d.get("created") or ""),
            )
            _check_normalisation(meta.normalisation)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise IndexFileError(f"{json_path}: incomplete index metadata ({exc})") from None
        data_key = "codes" if meta.kind == "binary" else "features"
        for key in (data_key, "paths", "labels", "has_label"):
            if key not in arrays:
                raise IndexFileError(f"{npz_path}: array {key!r} is missing; not an index file")
        data, paths = arrays[data_key], arrays["paths"]
        n = data.shape[0] if data.ndim else -1
        if (
            paths.ndim != 1
            or paths.shape[0] != n
            or arrays["labels"].shape != paths.shape
            or arrays["has_label"].shape != paths.shape
        ):
            raise IndexFileError(
                f"{npz_path}: {paths.shape[0] if paths.ndim else 0} paths for {n} codes; the file is inconsistent"
            )
        if meta_d.get("count") is not None and meta_d["count"] != n:
            raise IndexFileError(
                f"{npz_path}: holds {n} codes but {json_path.name} says {meta_d['count']}; "
                "the two files do not belong together"
            )
        labels = [
            str(lab) if has else None
            for lab, has in zip(arrays["labels"], arrays["has_label"], strict=True)
        ]
        extra = {k[len(_EXTRA) :]: v for k, v in arrays.items() if k.startswith(_EXTRA)}
        paths = _checked_paths(npz_path, paths.tolist(), meta.archive_root)
        stats = arrays.get("tile_stats")
        if stats is not None and (stats.dtype.kind not in "iu" or stats.shape != (n, 3)):
            stats = None  # not ours to trust: the index works, only change detection is off
        sets, names = _loaded_label_sets(npz_path, json_path, meta_d, arrays, n)
        more = {"extra_arrays": extra, "tile_stats": stats, "label_sets": sets,
                "label_names": names}  # fmt: skip
        try:
            if meta.kind == "binary":
                if data.dtype != np.uint8:
                    raise ValueError(f"codes must be uint8, got {data.dtype}")
                return cls(meta, paths, labels, codes=data, **more)
            return cls(meta, paths, labels, features=data, **more)
        except ValueError as exc:
            raise IndexFileError(f"{npz_path}: {exc}") from None


_LABEL_SETS = "label_sets_packed"
MAX_LABEL_NAMES = 10_000  # BigEarthNet has 43; anything near this is not a nomenclature
MAX_LABEL_CHARS = 1_000


def _checked_label_sets(
    label_sets: np.ndarray | None, label_names, n: int
) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """``(label_sets as (n, L) bool, names)``, or ``(None, ())``; ValueError when they do not
    fit each other or the index."""
    if label_sets is None:
        return None, ()
    names = tuple(label_names or ())
    sets = np.asarray(label_sets)
    if sets.dtype != bool:
        if sets.dtype.kind not in "iub" or (sets.size and not np.isin(sets, (0, 1)).all()):
            raise ValueError(f"label sets must be 0/1 or bool, got {sets.dtype}")
        sets = sets.astype(bool)
    if sets.shape != (n, len(names)):
        raise ValueError(
            f"label sets must be ({n}, {len(names)}) for {n} tiles and {len(names)} label "
            f"names, got {sets.shape}"
        )
    if len(set(names)) != len(names) or not all(isinstance(x, str) and x for x in names):
        raise ValueError("label names must be distinct, non-empty names")
    return np.ascontiguousarray(sets), names


def _loaded_label_sets(
    npz_path: Path, json_path: Path, meta_d: dict, arrays: dict[str, np.ndarray], n: int
) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """The label sets of a loaded index (older indexes have none): names from the JSON half,
    bits from the npz, both checked against each other and the index size."""
    names = meta_d.get("label_names")
    packed = arrays.get(_LABEL_SETS)
    if names is None and packed is None:
        return None, ()
    if (
        not isinstance(names, list)
        or len(names) > MAX_LABEL_NAMES
        or not all(isinstance(x, str) and 0 < len(x) <= MAX_LABEL_CHARS for x in names)
        or len(set(names)) != len(names)
    ):
        raise IndexFileError(f"{json_path}: 'label_names' is not a list of distinct label names")
    if packed is None:
        raise IndexFileError(f"{npz_path}: array {_LABEL_SETS!r} is missing for the label names")
    if packed.dtype != np.uint8 or packed.shape != (n, -(-len(names) // 8)):
        raise IndexFileError(
            f"{npz_path}: label sets are {packed.dtype} {packed.shape}, expected uint8 "
            f"({n}, {-(-len(names) // 8)}) for {n} tiles and {len(names)} labels"
        )
    sets = np.unpackbits(packed, axis=1, count=len(names)).astype(bool)
    return sets.reshape(n, len(names)), tuple(names)


def _checked_paths(npz_path: Path, paths: list, archive_root) -> list[str]:
    """Tile paths of an index of an archive folder are relative and stay inside it: a stored
    ``../x`` or ``/etc/x`` is refused (:func:`rsgui.paths.inside` for what is joined later)."""
    paths = [str(p) for p in paths]
    if archive_root:
        for p in paths:
            if p.startswith("/") or ".." in p and ".." in p.split("/") or "\x00" in p:
                raise IndexFileError(
                    f"{npz_path}: tile path {p!r} leads outside the archive; refused"
                )
    return paths


def _pair_of(meta: dict, arrays: dict[str, np.ndarray]) -> tuple[str | None, str | None]:
    a = arrays.get("pair_id")
    return meta.get("pair_id"), (str(a) if a is not None and a.ndim == 0 else None)


def _read_pair(json_path: Path, npz_path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Both halves of an index, checked to come from one write (their ``pair_id``). A writer
    killed between its two renames left its JSON half pending: the swap is finished here
    (:func:`rsgui.atomic.resolve_pair`), so the index read is the old one or the new one; a live
    writer is waited for. A lasting mismatch is an :class:`IndexFileError` naming both files.
    An index of an older version has no id: it loads, with a warning that its halves cannot be
    checked."""
    if not json_path.is_file() and npz_path.is_file():
        arrays = _read_arrays(npz_path)
        found = resolve_pair(npz_path, json_path, _pair_of({}, arrays)[1])
        meta = _read_meta(found or json_path, npz_path)
    else:
        meta = _read_meta(json_path, npz_path)
        arrays = _read_arrays(npz_path)
    ids = _pair_of(meta, arrays)
    if ids[0] != ids[1]:
        found = resolve_pair(npz_path, json_path, ids[1])
        if found is None:
            with locked(npz_path, shared=True):  # a live writer: read once it has finished
                arrays = _read_arrays(npz_path)
            found = resolve_pair(npz_path, json_path, _pair_of({}, arrays)[1]) or json_path
        meta = _read_meta(found, npz_path)
        ids = _pair_of(meta, arrays)
    if ids[0] != ids[1]:
        raise IndexFileError(
            f"{npz_path} and {json_path.name} come from different writes (their ids differ: "
            f"{str(ids[1] or 'none')[:40]} and {str(ids[0] or 'none')[:40]}); rebuild the index"
        )
    if ids[0] is None:
        log.warning(
            "%s: an index of an older version (no pair id); its two halves cannot be checked "
            "against each other, rebuild it to add one",
            json_path,
        )
    return meta, arrays


def _read_meta(json_path: Path, npz_path: Path) -> dict:
    if not json_path.is_file():
        raise IndexFileError(
            f"{json_path}: index metadata file is missing (an index is {npz_path.name} + {json_path.name})"
        )
    try:
        meta = read_json(json_path, IndexFileError, what="index metadata file")
    except FileNotFoundError:
        raise IndexFileError(f"{json_path}: index metadata file is missing") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise IndexFileError(f"{json_path}: not an index metadata file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFileError(
            f"{json_path}: unknown index format version {version!r} (this program reads {FORMAT_VERSION}); "
            "rebuild the index"
        )
    return meta


def _read_arrays(npz_path: Path) -> dict[str, np.ndarray]:
    """The arrays of an index, each member's claimed size checked before it is allocated
    (:mod:`rsgui.npzfile`); pickled members refused."""
    if not npz_path.is_file():
        raise IndexFileError(f"{npz_path}: index array file is missing")
    return load_npz(npz_path, IndexFileError, what="index array file")


def _check_normalisation(norm: dict) -> None:
    """A stored pixel scaling must be two finite numbers with a positive divisor: a NaN there
    turns every query tile into NaN."""
    if not norm:
        return
    clip, divisor = float(norm["clip"]), float(norm["divisor"])
    if not (np.isfinite(clip) and np.isfinite(divisor) and divisor > 0):
        raise ValueError(f"normalisation clip {clip} / divisor {divisor} is not usable")


def _check_finite(npz_path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuse float arrays holding NaN or infinity (a diverged model, a damaged file): codes or
    projections made of them rank every tile alike."""
    for key, arr in arrays.items():
        if arr.dtype.kind in "fc" and arr.size and not np.isfinite(arr).all():
            name = key[len(_EXTRA) :] if key.startswith(_EXTRA) else key
            raise IndexFileError(
                f"{npz_path}: array {name!r} holds NaN or infinite values; rebuild the index"
            )


# -- where an archive's indexes are kept ----------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """An index file offered for search: its path and the summary read from its JSON half."""

    path: Path
    method: str
    bits: int
    kind: str = "binary"
    n: int | None = None
    band_names: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        size = f", {self.n} tiles" if self.n is not None else ""
        return f"{self.method} · {self.bits} bits{size} ({self.path.stem})"


def index_dirs(archive_root: Path | None) -> list[Path]:
    """Folders that may hold an archive's indexes: ``ROOT/.rsgui/indexes`` and, for read-only
    archives, the archive's folder in the user cache (the same places as the archive manifest)."""
    if archive_root is None:
        return []
    from rsgui.manifest import archive_cache_path
    from rsgui.paths import user_cache_dir

    root = Path(archive_root)
    return [archive_cache_path(root).parent / "indexes", user_cache_dir(root) / "indexes"]


def writable_index_dir(archive_root: Path) -> Path:
    """Where a new index of this archive is saved: inside the archive when it is writable, else
    in the user cache (found again by :func:`index_dirs`). A folder whose permission bits forbid
    writing counts as read-only even for an administrator who could write anyway."""
    inside, user = index_dirs(archive_root)
    root = Path(archive_root)
    try:
        mode = root.stat().st_mode
    except OSError:
        return user
    marked_writable = bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    probe = inside
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return inside if marked_writable and os.access(probe, os.W_OK) else user


def entry_for(path: Path) -> IndexEntry | None:
    """Summary of an index from its JSON half, or of an index folder from its manifest (cheap:
    no codes are read)."""
    if (Path(path) / "manifest.json").is_file():  # a sharded index folder (rsgui.shards)
        try:
            m = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
            meta = m["meta"]
            return IndexEntry(Path(path), str(meta["method"]), int(meta["bits"]),
                              str(meta.get("kind", "binary")), m.get("count"),
                              tuple(meta.get("band_names", ())))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None
    json_path = Path(path).with_suffix(".json")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        return IndexEntry(
            path=json_path.with_suffix(".npz"),
            method=str(meta["method"]),
            bits=int(meta["bits"]),
            kind=str(meta.get("kind", "binary")),
            n=meta.get("count"),
            band_names=tuple(meta.get("band_names", ())),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def scan_indexes(archive_root: Path | None) -> list[IndexEntry]:
    """Every readable index of the archive, newest first."""
    found: list[IndexEntry] = []
    for folder in index_dirs(archive_root):
        if not folder.is_dir():
            continue
        npzs = sorted(
            [*folder.glob("*.npz"), *(m.parent for m in folder.glob("*/manifest.json"))],
            key=lambda p: p.stat().st_mtime, reverse=True,
        )  # fmt: skip
        for npz in npzs:
            if npz.name.startswith("."):
                continue  # temporary files of an atomic write
            entry = entry_for(npz)
            if entry is not None and all(e.path != entry.path for e in found):
                found.append(entry)
    return found
