"""Search as analysts work: several examples, negative examples, a refined ranking, filters and
saved searches.

A query is a set of tiles. :func:`search_set` ranks the archive once for the set: the Hamming
distances to the positive examples are combined (:data:`rsgui.ranking.COMBINES`; the sum measured
best, see ``rsgui-cli experiment feedback``), tiles near a negative example move down, and the
ranking stays exact: every tile is scored, ties fall in archive order, and the examples
themselves are left out of the results (the query-tile rule of :mod:`rsgui.services.search`).

Refining (``refine="logreg"`` or ``"svm"``) fits a linear model on the marked tiles' code bits
(positives against the negatives plus a fixed sample of the archive: without that sample a model
fitted on a handful of near misses ranks far-off tiles first, which measured worse than no
refinement after one round) and ranks every tile by its decision value: on 27,000 tiles the fit
and the re-ranking take milliseconds (``rsgui-cli experiment feedback`` reports them).

Filters (:class:`Filters`) restrict the ranking to classes, to a lon/lat box (tile footprints come
from the open archive) and to Sentinel-2 scenes or dates parsed from the tiles' paths when the
archive has them. :class:`SavedSearch` writes a search to a small JSON file and reads it back,
refusing any file that is not one, too large, or out of range.
"""

from __future__ import annotations

import json
import re
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsgui.atomic import atomic_write_text
from rsgui.codes import pack_codes, unpack_codes
from rsgui.errors import SavedSearchError
from rsgui.index_store import HashIndex
from rsgui.ranking import COMBINES, cosine_set_scores, rank_scores, set_scores
from rsgui.services.search import (
    QueryTile,
    SearchResult,
    SearchResults,
    _query_label,
    _reads_alike,
    check_area,
    encode_query,
    encoder_for_index,
    own_position,
)

REFINE_MODELS: dict[str, str] = {"logreg": "logistic regression", "svm": "linear SVM"}
DEFAULT_COMBINE = "sum"
# Weight of the negative examples' mean distance against the positives' (measured on both real
# archives with ``rsgui-cli experiment feedback``).
DEFAULT_NEG_WEIGHT = 0.5
BACKGROUND_NEGATIVES = 200  # archive tiles joining the marked negatives when a model is fitted


# -- scenes and dates from Sentinel-2 names ------------------------------------------------------

_S2_NAME = re.compile(
    r"(S2[A-D])_MSI(?:L1C|L2A)_(\d{4})(\d{2})(\d{2})T(\d{6})(?:_N\d{4})?(?:_R\d{3})?(?:_(T\d{2}[A-Z]{3}))?"
)


def scene_of(path: str) -> tuple[str | None, str | None]:
    """``(scene, date)`` of a tile whose path holds a Sentinel-2 product name (BigEarthNet patches,
    SAFE folders): the scene is the MGRS tile (``T33UUP``) when named, else the datatake
    (``S2A_20170613T101031``); the date is ``YYYY-MM-DD``. ``(None, None)`` otherwise."""
    m = _S2_NAME.search(str(path))
    if m is None:
        return None, None
    sat, y, mo, d, hms, mgrs = m.groups()
    return (mgrs or f"{sat}_{y}{mo}{d}T{hms}"), f"{y}-{mo}-{d}"


_scene_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def scene_table(index: HashIndex) -> tuple[list[str | None], list[str | None]]:
    """Scene and date of every index position (parsed once per index)."""
    if index not in _scene_cache:
        pairs = [scene_of(p) for p in index.paths]
        _scene_cache[index] = ([s for s, _ in pairs], [d for _, d in pairs])
    return _scene_cache[index]


# -- filters --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Which tiles a search may return. Empty fields do not filter.

    ``bbox``: (west, south, east, north) in degrees; a tile passes when its footprint meets the
    box. ``scenes``/``dates``: as :func:`scene_of` gives them."""

    classes: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    scenes: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "scenes", tuple(self.scenes))
        object.__setattr__(self, "dates", tuple(self.dates))
        if self.bbox is not None:
            object.__setattr__(self, "bbox", check_bbox(self.bbox))

    @property
    def empty(self) -> bool:
        return not (self.classes or self.bbox or self.scenes or self.dates)

    def describe(self) -> str:
        parts = []
        if self.classes:
            parts.append("classes " + ", ".join(self.classes))
        if self.bbox:
            parts.append("area " + ", ".join(f"{v:g}" for v in self.bbox))
        if self.scenes:
            parts.append("scenes " + ", ".join(self.scenes))
        if self.dates:
            parts.append("dates " + ", ".join(self.dates))
        return "; ".join(parts) or "no filter"

    def to_dict(self) -> dict:
        return {
            "classes": list(self.classes),
            "bbox": None if self.bbox is None else list(self.bbox),
            "scenes": list(self.scenes),
            "dates": list(self.dates),
        }


def check_bbox(bbox) -> tuple[float, float, float, float]:
    """(west, south, east, north) as floats within lon/lat range: the search's own check."""
    return check_area(bbox)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``"W,S,E,N"`` (commas or spaces) as a checked box."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if len(parts) != 4:
        raise ValueError(f"an area is four numbers west,south,east,north, got {text!r}")
    return check_bbox(parts)


_bounds_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _archive_bounds(archive) -> np.ndarray:
    """(n, 4) lon/lat bounds (west, south, east, north) of each archive record, NaN unknown."""
    if archive not in _bounds_cache:
        out = np.full((len(archive.records), 4), np.nan)
        for i, rec in enumerate(archive.records):
            ring = rec.georef.footprint_lonlat
            if ring:
                lons = [p[0] for p in ring]
                lats = [p[1] for p in ring]
                out[i] = (min(lons), min(lats), max(lons), max(lats))
        _bounds_cache[archive] = out
    return _bounds_cache[archive]


def tile_bounds(index: HashIndex, archive) -> np.ndarray:
    """(N, 4) lon/lat bounds of every index position from the open archive (NaN: unknown)."""
    out = np.full((len(index), 4), np.nan)
    if archive is None:
        return out
    bounds = _archive_bounds(archive)
    for i, rel in enumerate(index.paths):
        a = archive.find(rel)
        if a is not None:
            out[i] = bounds[a]
    return out


def available_filters(index: HashIndex, archive=None) -> dict[str, Any]:
    """What can be filtered on: ``classes`` (labels), ``scenes`` and ``dates`` (empty when the
    paths name none), ``area`` (True when tiles have footprints in the open archive)."""
    scenes, dates = scene_table(index)
    area = archive is not None and bool(np.isfinite(tile_bounds(index, archive)[:, 0]).any())
    return {
        "classes": list(index.classes),
        "scenes": sorted({s for s in scenes if s}),
        "dates": sorted({d for d in dates if d}),
        "area": area,
    }


def filter_mask(index: HashIndex, filters: Filters | None, archive=None) -> np.ndarray | None:
    """(N,) bool: the positions that pass ``filters`` (None: no filter). An area filter needs the
    archive the index was built from open (the index holds no footprints)."""
    if filters is None or filters.empty:
        return None
    keep = np.ones(len(index), bool)
    if filters.classes:
        wanted = set(filters.classes)
        keep &= np.array([lab in wanted for lab in index.labels], bool)
    if filters.scenes or filters.dates:
        scenes, dates = scene_table(index)
        if filters.scenes:
            keep &= np.array([s in set(filters.scenes) for s in scenes], bool)
        if filters.dates:
            keep &= np.array([d in set(filters.dates) for d in dates], bool)
    if filters.bbox is not None:
        if archive is None:
            raise ValueError("an area filter needs the archive open: the index holds no footprints")
        b = tile_bounds(index, archive)
        w, s, e, n = filters.bbox
        with np.errstate(invalid="ignore"):
            meets = (b[:, 0] <= e) & (b[:, 2] >= w) & (b[:, 1] <= n) & (b[:, 3] >= s)
        keep &= meets  # NaN (no footprint) compares False: unplaced tiles are left out
    return keep


# -- codes of the examples -----------------------------------------------------------------------


def _as_ref(q):
    return q if hasattr(q, "archive_index") else QueryTile(Path(q))


def example_codes(index: HashIndex, refs: Sequence, archive=None, encoder=None):
    """``(codes, positions)``: each example's code as the index stores it (packed uint8 for a
    binary index, float features otherwise) and its index position (-1 when it is no tile of the
    indexed archive). A tile of the index takes its stored code; any other file is read and
    encoded as the index's tiles were."""
    meta = index.meta
    binary = meta.kind == "binary"
    rows, pos = [], []
    for q in refs:
        ref = _as_ref(q)
        own = own_position(index, ref.path)
        if own is not None:
            rows.append(index.codes[own] if binary else index.features[own])
            pos.append(own)
            continue
        encoder = encoder or encoder_for_index(index)
        source: Any = str(ref.path)
        if ref.archive_index is not None and _reads_alike(archive, meta):
            source = archive.read([ref.archive_index], bands=list(meta.band_names))
        code = encode_query(index, source, encoder)
        rows.append(pack_codes(code)[0] if binary else code[0])
        pos.append(-1)
    width = index.codes.shape[1] if binary else meta.bits
    dtype = np.uint8 if binary else np.float32
    codes = np.array(rows, dtype=dtype).reshape(len(rows), width)
    return codes, np.array(pos, dtype=np.int64), encoder


# -- scores --------------------------------------------------------------------------------------


def combined_scores(
    index: HashIndex,
    pos_codes: np.ndarray,
    neg_codes: np.ndarray | None = None,
    combine: str = DEFAULT_COMBINE,
    neg_weight: float = DEFAULT_NEG_WEIGHT,
) -> np.ndarray:
    """(N,) score of every index tile for the examples' codes (from :func:`example_codes`)."""
    if index.meta.kind == "binary":
        return set_scores(index.packed(), pos_codes, neg_codes, combine, neg_weight)
    return cosine_set_scores(index.unit_features(), pos_codes, neg_codes, combine, neg_weight)


_matrix_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def code_matrix(index: HashIndex) -> np.ndarray:
    """(N, bits) float32 model input: code bits as -1/+1 (binary), unit features (float)."""
    if index not in _matrix_cache:
        if index.meta.kind == "binary":
            _matrix_cache[index] = unpack_codes(index.codes, index.meta.bits)
        else:
            _matrix_cache[index] = index.unit_features().astype(np.float32)
    return _matrix_cache[index]


def _rows_of(index: HashIndex, codes: np.ndarray) -> np.ndarray:
    if index.meta.kind == "binary":
        return unpack_codes(codes, index.meta.bits)
    from rsgui.cosine import normalise_rows

    return normalise_rows(np.asarray(codes, np.float32))


@dataclass(frozen=True)
class RefineModel:
    """A fitted linear model: ``score = -(X @ coef + intercept)`` (lower = more relevant)."""

    kind: str
    coef: np.ndarray
    intercept: float
    n_pos: int
    n_neg: int
    background: bool  # archive tiles stood in for the negatives
    fit_s: float

    def scores(self, x: np.ndarray) -> np.ndarray:
        return -(np.asarray(x, np.float64) @ self.coef + self.intercept)


def fit_refiner(
    index: HashIndex,
    pos_codes: np.ndarray,
    neg_codes: np.ndarray | None = None,
    model: str = "logreg",
    exclude=(),
    seed: int = 0,
    background: bool | None = None,
    c: float | None = None,
) -> RefineModel:
    """Fit ``model`` (:data:`REFINE_MODELS`) on the positives against the negatives and a fixed
    sample of the archive (never ``exclude``: the examples); ``background=False`` leaves the
    sample out while there are negatives. ``c``: the inverse regularisation (0.1 logistic
    regression, 0.01 linear SVM, chosen on both real archives)."""
    if model not in REFINE_MODELS:
        raise ValueError(f"unknown refine model {model!r}; choose from {', '.join(REFINE_MODELS)}")
    xp = _rows_of(index, pos_codes)
    if xp.shape[0] == 0:
        raise ValueError("refining needs at least one relevant example")
    t0 = time.perf_counter()
    neg = None if neg_codes is None or len(neg_codes) == 0 else _rows_of(index, neg_codes)
    background = True if background is None or neg is None else background
    if background:
        rng = np.random.default_rng(seed)
        taken = np.zeros(len(index), bool)
        ex = np.asarray(list(exclude), np.int64)
        taken[ex[(ex >= 0) & (ex < len(index))]] = True
        free = np.flatnonzero(~taken)
        pick = np.sort(rng.choice(free, size=min(BACKGROUND_NEGATIVES, free.size), replace=False))
        sample = code_matrix(index)[pick]
        neg = sample if neg is None else np.concatenate([neg, sample])
        if neg.shape[0] == 0:
            raise ValueError("refining needs a tile that is not an example")
    x = np.concatenate([xp, neg]).astype(np.float64)
    y = np.r_[np.ones(xp.shape[0]), np.zeros(neg.shape[0])]
    if model == "logreg":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=c or 0.1, class_weight="balanced", max_iter=500)
    else:
        from sklearn.svm import LinearSVC

        clf = LinearSVC(C=c or 0.01, class_weight="balanced", max_iter=5000)
    with _one_thread():  # a few hundred rows: threads only wait for each other (5x slower here)
        clf.fit(x, y)
    return RefineModel(
        model, np.asarray(clf.coef_[0], np.float64), float(np.asarray(clf.intercept_).ravel()[0]),
        xp.shape[0], neg.shape[0], background, time.perf_counter() - t0,
    )  # fmt: skip


def warm_up() -> None:
    """Import the model library ahead of the first refinement (a second or more on a busy
    machine)."""
    import sklearn.linear_model  # noqa: F401
    import sklearn.svm  # noqa: F401


def _one_thread():
    """BLAS and OpenMP held to one thread while a tiny model is fitted."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


def refined_scores(
    index: HashIndex,
    pos_codes: np.ndarray,
    neg_codes: np.ndarray | None = None,
    model: str = "logreg",
    exclude=(),
) -> tuple[np.ndarray, RefineModel]:
    """(N,) scores of every index tile under the fitted model, and the model."""
    fitted = fit_refiner(index, pos_codes, neg_codes, model, exclude)
    return fitted.scores(code_matrix(index)), fitted


# -- search with a set of examples ---------------------------------------------------------------


def search_set(
    index: HashIndex,
    positives: Sequence,
    k: int,
    *,
    negatives: Sequence = (),
    combine: str = DEFAULT_COMBINE,
    neg_weight: float = DEFAULT_NEG_WEIGHT,
    refine: str | None = None,
    filters: Filters | None = None,
    archive=None,
    encoder=None,
    index_path: str | Path | None = None,
) -> SearchResults:
    """The ``k`` archive tiles nearest to a set of examples, each example left out of the results.

    ``positives``/``negatives``: files or tile refs (``path``, ``archive_index``); ``combine``:
    :data:`rsgui.ranking.COMBINES`; ``refine``: None (the combined ranking) or a key of
    :data:`REFINE_MODELS`; ``filters``: :class:`Filters`. One positive, no negative, no filter
    and ``combine="sum"`` give exactly :func:`rsgui.services.search.search`'s ranking."""
    if k < 1:
        raise ValueError(f"the number of results must be at least 1, got {k}")
    if not positives:
        raise ValueError("a search needs at least one example tile")
    t0 = time.perf_counter()
    pos_refs = [_as_ref(q) for q in positives]
    neg_refs = [_as_ref(q) for q in negatives]
    pos, pos_at, encoder = example_codes(index, pos_refs, archive, encoder)
    neg, neg_at, encoder = example_codes(index, neg_refs, archive, encoder)
    exclude = np.concatenate([pos_at, neg_at])
    mask = filter_mask(index, filters, archive)
    fitted = None
    if refine:
        score, fitted = refined_scores(index, pos, neg, refine, exclude)
    else:
        score = combined_scores(index, pos, neg, combine, neg_weight)
    order = rank_scores(score, k, mask, exclude)
    meta = index.meta
    q_label = _query_label(archive, index, pos_refs[0])
    same_archive = (
        archive is not None and meta.archive_root and Path(meta.archive_root) == Path(archive.root)
    )
    root = Path(meta.archive_root) if meta.archive_root else None
    integral = np.issubdtype(score.dtype, np.integer)
    query_name = " + ".join(str(r.path) for r in pos_refs)
    rows: list[SearchResult] = []
    for rank, i in enumerate(order.tolist(), start=1):
        rel, label = index.paths[i], index.labels[i]
        dist = int(score[i]) if integral else float(score[i])
        path = str(root / rel) if root is not None and not Path(rel).is_absolute() else rel
        correct = None if (q_label is None or label is None) else (label == q_label)
        aidx = archive.find(rel) if same_archive else None
        rows.append(SearchResult(query_name, rank, path, dist, label, correct, archive_index=aidx))
    if fitted is not None:
        strategy = f"refined by {REFINE_MODELS[refine]}"
    elif len(pos_refs) > 1 or neg_refs:
        strategy = f"{combine} of {len(pos_refs)} example(s)" + (
            f", {len(neg_refs)} negative(s)" if neg_refs else ""
        )
    else:
        strategy = ""
    return SearchResults(
        query=pos_refs[0], query_label=q_label,
        index_path=None if index_path is None else Path(index_path), method=meta.method,
        bits=meta.bits, kind=meta.kind, rows=rows, elapsed_s=time.perf_counter() - t0,
        encoder=encoder, examples=tuple(pos_refs), negatives=tuple(neg_refs), strategy=strategy,
        filters=None if filters is None or filters.empty else filters.describe(),
    )  # fmt: skip


# -- saved searches ------------------------------------------------------------------------------

SEARCH_FORMAT = "rsgui-search"
SEARCH_VERSION = 1
MAX_SEARCH_BYTES = 1 << 20  # a saved search is a few kB; anything larger is refused unread
MAX_EXAMPLES = 2000  # per list
MAX_TEXT = 4096  # characters in one path or name
MAX_K = 100_000


@dataclass
class SavedSearch:
    """A search as it is saved: the index, the examples (paths), the marks, filters, settings."""

    index: str | None = None
    archive: str | None = None
    positives: list[str] = field(default_factory=list)
    negatives: list[str] = field(default_factory=list)
    combine: str = DEFAULT_COMBINE
    neg_weight: float = DEFAULT_NEG_WEIGHT
    refine: str | None = None
    filters: Filters = field(default_factory=Filters)
    k: int = 20

    def to_dict(self) -> dict:
        return {
            "format": SEARCH_FORMAT, "version": SEARCH_VERSION, "index": self.index,
            "archive": self.archive, "positives": list(self.positives),
            "negatives": list(self.negatives), "combine": self.combine,
            "neg_weight": self.neg_weight, "refine": self.refine,
            "filters": self.filters.to_dict(), "k": self.k,
        }  # fmt: skip

    def save(self, path: str | Path) -> Path:
        """Written atomically (a crash leaves the old file or none)."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> SavedSearch:
        """Read and check a saved search; :class:`SavedSearchError` names the file and the fault.
        Nothing is written and nothing larger than :data:`MAX_SEARCH_BYTES` is read."""
        path = Path(path)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_SEARCH_BYTES + 1)
        except OSError as exc:
            raise SavedSearchError(
                f"{path}: cannot read the saved search ({exc.strerror or exc})"
            ) from None
        if len(data) > MAX_SEARCH_BYTES:
            raise SavedSearchError(
                f"{path}: larger than {MAX_SEARCH_BYTES // 1024} kB; not a saved search"
            )
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise SavedSearchError(f"{path}: not a readable saved search ({exc})") from None
        try:
            return cls.from_dict(obj)
        except (TypeError, ValueError) as exc:
            raise SavedSearchError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, obj: Any) -> SavedSearch:
        if not isinstance(obj, dict) or obj.get("format") != SEARCH_FORMAT:
            raise ValueError("not a saved search (format is not rsgui-search)")
        if obj.get("version") != SEARCH_VERSION:
            raise ValueError(
                f"saved-search version {obj.get('version')!r}; this program reads {SEARCH_VERSION}"
            )
        combine = obj.get("combine", DEFAULT_COMBINE)
        if combine not in COMBINES:
            raise ValueError(f"unknown combination {combine!r}")
        refine = obj.get("refine")
        if refine is not None and refine not in REFINE_MODELS:
            raise ValueError(f"unknown refine model {refine!r}")
        w = obj.get("neg_weight", DEFAULT_NEG_WEIGHT)
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w <= 100:
            raise ValueError(f"negative weight must be a number from 0 to 100, got {w!r}")
        k = obj.get("k", 20)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
        f = obj.get("filters") or {}
        if not isinstance(f, dict):
            raise ValueError("filters must be an object")
        bbox = f.get("bbox")
        filters = Filters(
            classes=_texts(f.get("classes"), "filters.classes"),
            bbox=None if bbox is None else check_bbox(_list(bbox, "filters.bbox", 4)),
            scenes=_texts(f.get("scenes"), "filters.scenes"),
            dates=_texts(f.get("dates"), "filters.dates"),
        )
        positives = list(_texts(obj.get("positives"), "positives"))
        if not positives:
            raise ValueError("a saved search needs at least one example")
        return cls(
            index=_text_or_none(obj.get("index"), "index"),
            archive=_text_or_none(obj.get("archive"), "archive"),
            positives=positives, negatives=list(_texts(obj.get("negatives"), "negatives")),
            combine=combine, neg_weight=float(w), refine=refine, filters=filters, k=k,
        )  # fmt: skip


def _list(value, name: str, exact: int | None = None) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list")
    if len(value) > MAX_EXAMPLES or (exact is not None and len(value) != exact):
        raise ValueError(
            f"{name} holds {len(value)} entries"
            + (f", needs {exact}" if exact is not None else f", at most {MAX_EXAMPLES}")
        )
    return value


def _texts(value, name: str) -> tuple[str, ...]:
    return tuple(_text(v, name) for v in _list(value, name))


def _text(v, name: str) -> str:
    if not isinstance(v, str) or not v or len(v) > MAX_TEXT or "\x00" in v:
        raise ValueError(f"{name}: each entry must be a text of 1 to {MAX_TEXT} characters")
    return v


def _text_or_none(v, name: str) -> str | None:
    return None if v is None else _text(v, name)
