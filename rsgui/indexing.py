"""Build an index from an archive with any encoder, re-create that encoder, and search with files.

The index alone is enough to search: it names its method, band set and normalisation, and holds
the spectral method's projection (or the path of the trained model), so a query file from anywhere
is read and encoded exactly as the archive tiles were, or refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rsgui.bands import MissingBandsError, Normalisation, band_indices
from rsgui.index import HashIndex, IndexMeta, IndexMismatchError, describe_bands
from rsgui.tiles import TileBatch

ProgressFn = Callable[[int, int | None, str], None]
CancelFn = Callable[[], bool]


class Cancelled(Exception):
    """The user stopped a long job (fitting, indexing, evaluating) between two batches."""


@dataclass(frozen=True)
class SearchResult:
    """One row of a search: the ``rank``-th (from 1) nearest archive tile to ``query``."""

    query: str
    rank: int
    path: str  # relative to the index's archive root
    distance: int | float  # Hamming distance (binary codes) or 1 - cosine similarity (float)
    label: str | None

    def as_dict(self) -> dict:
        return asdict(self)


RESULT_COLUMNS: tuple[str, ...] = ("query", "rank", "path", "distance", "label")


def build_index(
    archive,
    encoder,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    batch_size: int = 256,
    model_path=None,
) -> HashIndex:
    """Encode every tile of ``archive`` with ``encoder``; paths relative to the archive root.

    A trained encoder's model file (``model_path``, else what its ``describe()`` or ``path``
    names) is recorded as an absolute path so the index can encode queries later."""
    band_indices(archive.band_names, encoder.band_names)  # MissingBandsError names what lacks
    if archive.normalisation != encoder.normalisation:
        raise ValueError(
            f"the archive is scaled by {_norm_text(archive.normalisation)} but the "
            f"{encoder.method} model expects {_norm_text(encoder.normalisation)}; open the archive "
            "with the model's normalisation"
        )
    n = len(archive)
    if n == 0:
        raise ValueError(f"{archive.root}: no readable tiles to index")
    codes = np.empty((n, encoder.bits), dtype=np.float32)
    done = 0
    for batch in archive.iter_batches(bands=list(encoder.band_names), batch_size=batch_size):
        if cancel is not None and cancel():
            raise Cancelled("indexing cancelled")
        out = np.asarray(encoder.encode(batch.pixels), dtype=np.float32)
        codes[done : done + len(out)] = out
        done += len(out)
        if progress:
            progress(done, n, f"encoding with {encoder.method}")
    if done != n:
        raise ValueError(
            f"{archive.root}: read {done} of {n} tiles; the archive changed while indexing"
        )
    described = dict(encoder.describe())
    described.setdefault("tile_shape", list(archive.tile_shape))
    if encoder.method != "spectral":
        found = model_path or described.get("model_path") or described.get("model")
        found = found or getattr(encoder, "path", None)
        if found:
            described["model_path"] = str(Path(found).resolve())
    meta = IndexMeta(
        method=encoder.method,
        band_names=tuple(encoder.band_names),
        bits=int(encoder.bits),
        kind=encoder.kind,
        normalisation=encoder.normalisation.to_dict(),
        archive_root=str(Path(archive.root).resolve()),
        encoder=described,
    )
    extra = encoder.state_arrays() if hasattr(encoder, "state_arrays") else None
    return HashIndex.from_codes(
        codes,
        [r.path for r in archive.records],
        [r.label for r in archive.records],
        meta,
        extra_arrays=extra,
    )


def encoder_for_index(index: HashIndex):
    """The encoder that made ``index``: rebuilt from its arrays (spectral) or loaded from the
    model file it names (trained methods), checked against the index."""
    meta = index.meta
    if meta.method == "spectral":
        from rsgui.spectral import SpectralEncoder

        try:
            return SpectralEncoder.from_state(meta, index.extra_arrays)
        except (KeyError, ValueError) as e:
            raise IndexMismatchError(
                f"cannot rebuild the spectral encoder of the index: {e}"
            ) from None
    from rsgui.encoders import load_trained_encoder

    model_path = (meta.encoder or {}).get("model_path") or (meta.encoder or {}).get("model")
    if not model_path:
        raise IndexMismatchError(
            f"the index (method {meta.method!r}) does not name its model file; rebuild it"
        )
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"{model_path}: model file of the index not found")
    encoder = load_trained_encoder(model_path, meta.method)
    index.check_query(encoder.method, encoder.band_names)
    if int(encoder.bits) != meta.bits:
        raise IndexMismatchError(
            f"{model_path}: model gives {encoder.bits} bits, the index holds {meta.bits}"
        )
    return encoder


def read_query(index: HashIndex, path, tile_shape=None) -> TileBatch:
    """Read one query file as the index's tiles were read (band names, normalisation)."""
    from rsgui.archive import TileReadError, read_tile_file

    meta = index.meta
    norm = Normalisation.from_dict(meta.normalisation) if meta.normalisation else None
    if tile_shape is None and meta.encoder.get("tile_shape"):
        tile_shape = tuple(meta.encoder["tile_shape"])
    try:
        batch = read_tile_file(
            path, normalisation=norm, bands=list(meta.band_names), expected_shape=tile_shape
        )
    except TileReadError:
        raise
    except MissingBandsError as e:
        raise TileReadError(
            str(path), f"cannot be searched in an index of {describe_bands(meta.band_names)}: {e}"
        ) from None
    if tuple(batch.band_names) != tuple(meta.band_names):
        raise TileReadError(
            str(path),
            f"has bands {describe_bands(batch.band_names)}, the index needs "
            f"{describe_bands(meta.band_names)}",
        )
    return batch


def encode_query(index: HashIndex, query, encoder=None) -> np.ndarray:
    """(Q, bits) codes of a query: a file path or an already read :class:`TileBatch` whose bands
    are the index's."""
    encoder = encoder or encoder_for_index(index)
    if isinstance(query, TileBatch):
        if tuple(query.band_names) != tuple(index.meta.band_names):
            raise IndexMismatchError(
                f"query tiles have bands {describe_bands(query.band_names)}, the index needs "
                f"{describe_bands(index.meta.band_names)}"
            )
        batch = query
    else:
        batch = read_query(index, query, getattr(encoder, "tile_shape", None))
    return np.asarray(encoder.encode(batch.pixels), dtype=np.float32)


def search_files(
    index: HashIndex,
    query_paths: Sequence,
    k: int,
    encoder=None,
    progress: ProgressFn | None = None,
) -> list[SearchResult]:
    """Top-``k`` archive tiles for each query file, as flat rows in query order.

    A query that is itself an archive tile comes first among the tiles at its distance (rank 1,
    distance 0 for its own codes), however ties fall in archive order."""
    if k < 1:
        raise ValueError(f"the number of results must be at least 1, got {k}")
    encoder = encoder or encoder_for_index(index)
    member = _member_lookup(index)
    rows: list[SearchResult] = []
    for done, qpath in enumerate(query_paths, start=1):
        codes = encode_query(index, qpath, encoder)
        idx, score = index.search(codes, k)
        idx, score = idx[0], score[0]
        own = member(qpath)
        if own is not None:
            idx, score = _put_first(index, codes, idx, score, own)
        for rank, (i, s) in enumerate(zip(idx.tolist(), score.tolist(), strict=True), start=1):
            dist = int(s) if index.meta.kind == "binary" else 1.0 - float(s)
            rows.append(SearchResult(str(qpath), rank, index.paths[i], dist, index.labels[i]))
        if progress:
            progress(done, len(query_paths), "searching")
    return rows


def _put_first(index, codes, idx, score, own):
    """Move archive tile ``own`` (the query itself) to the front of the tiles at its distance;
    if it was cut off by ties at the k-th distance, it takes the last place at that distance."""
    binary = index.meta.kind == "binary"
    pos = np.flatnonzero(idx == own)
    if pos.size:
        p = int(pos[0])
        own_score = score[p]
        idx, score = np.delete(idx, p), np.delete(score, p)
    else:
        own_score = _score_of(index, codes, own)
        if (own_score > score[-1]) if binary else (own_score < score[-1]):
            return idx, score  # farther than every result: not listed
        idx, score = idx[:-1], score[:-1]
    at = int(np.count_nonzero(score < own_score if binary else score > own_score))
    return np.insert(idx, at, own), np.insert(score, at, own_score)


def _score_of(index, codes, i):
    from rsgui.codes import pack_codes
    from rsgui.hamming import hamming_distances, normalise_rows

    if index.meta.kind == "binary":
        return int(hamming_distances(index.codes[i : i + 1], pack_codes(codes))[0, 0])
    return float(normalise_rows(codes)[0] @ normalise_rows(index.features[i : i + 1])[0])


def _member_lookup(index: HashIndex) -> Callable[[object], int | None]:
    """Position in the index of a query path that lies in the index's archive, else None."""
    root = Path(index.meta.archive_root) if index.meta.archive_root else None
    positions = {p: i for i, p in enumerate(index.paths)}

    def find(path) -> int | None:
        if root is None:
            return None
        try:
            rel = Path(path).resolve().relative_to(root.resolve())
        except (ValueError, OSError):
            return None
        return positions.get(rel.as_posix())

    return find


def _norm_text(norm: Normalisation) -> str:
    return f"min(value, {norm.clip:g}) / {norm.divisor:g}"


def write_results(rows: list[SearchResult], fmt: str, out=None) -> str:
    """Search rows as CSV (``query,rank,path,distance,label``) or JSON text; written atomically
    to ``out`` when given."""
    import csv
    import io
    import json

    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(RESULT_COLUMNS)
        for r in rows:
            dist = r.distance if isinstance(r.distance, int) else f"{r.distance:.6f}"
            w.writerow([r.query, r.rank, r.path, dist, r.label or ""])
        text = buf.getvalue()
    elif fmt == "json":
        text = json.dumps([r.as_dict() for r in rows], indent=2) + "\n"
    else:
        raise ValueError(f"unknown format {fmt!r}; choose csv or json")
    if out is not None:
        from rsgui.atomic import atomic_write_text

        atomic_write_text(out, text)
    return text
