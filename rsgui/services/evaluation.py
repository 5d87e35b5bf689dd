"""Retrieval quality of an index against its labels: MAP@k, P@N, class-wise MAP, PR curve.

An index with label sets (a multi-label archive, BigEarthNet) is measured the BigEarthNet way: a
result is relevant when it shares at least one label with the query (MAP@k, P@N, PR curve), and
graded by the Jaccard index of the two label sets (mean Jaccard@k, NDCG@k with gain = Jaccard);
per-label MAP replaces class-wise MAP (:mod:`rsgui.metrics`).

Each query ranks the whole archive except itself (leave-one-out, :mod:`rsgui.ranking`), ties in
archive order, exactly as a search would. Queries are processed in chunks so a 27,000-tile
archive needs only a few hundred megabytes for the full rankings the precision-recall curve
needs. :func:`evaluate_job` and :func:`evaluation_job` are jobs (:mod:`rsgui.progress`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rsgui import metrics, ranking
from rsgui.atomic import atomic_write_text
from rsgui.errors import JobError
from rsgui.index_store import HashIndex
from rsgui.progress import Job, Progress, ProgressFn, drive

_CHUNK_CELLS = 1 << 24  # query rows x archive size per chunk (~16 M distances)
_MULTI_CHUNK_CELLS = 1 << 22  # label sets need a few more (c, N) arrays per chunk
SAME_LABEL = "same label"
SHARES_A_LABEL = "shares at least one label"


@dataclass
class Evaluation:
    """Figures of one evaluation; MAP in both normalisations (see :func:`rsgui.metrics.average_precision`)."""

    n_queries: int
    n_database: int
    k: tuple[int, ...]
    n: tuple[int, ...]
    map_retrieved: dict[int, float]  # MAP@k, AP divided by the relevant results within the top k
    map_min: dict[int, float]  # MAP@k, AP divided by min(k, relevant tiles in the archive)
    precision: dict[int, float]  # P@N
    # k -> class -> MAP@k ('retrieved' normalisation); per label for label sets (relevant =
    # carries that label), and class_counts then counts the queries carrying each label
    classwise: dict[int, dict[str, float]]
    class_counts: dict[str, int]  # queries per class
    pr_cut: np.ndarray = field(repr=False)  # results retrieved at each PR point
    pr_precision: np.ndarray = field(repr=False)
    pr_recall: np.ndarray = field(repr=False)
    method: str = ""
    bits: int = 0
    # what makes a result relevant: SAME_LABEL, or SHARES_A_LABEL for label sets
    relevance: str = SAME_LABEL
    mean_jaccard: dict[int, float] = field(default_factory=dict)  # k -> mean Jaccard@k (multi)
    ndcg: dict[int, float] = field(default_factory=dict)  # k -> NDCG@k, gain = Jaccard (multi)

    @property
    def multilabel(self) -> bool:
        """True when measured on label sets; ``classwise`` then holds per-label MAP."""
        return self.relevance == SHARES_A_LABEL

    def to_markdown(self) -> str:
        """A short report: overall figures, then a class-wise (or per-label) MAP table."""
        lines = [
            f"Index: method {self.method}, {self.bits} bits; {self.n_queries} queries against "
            f"{self.n_database} tiles (each query excluded from its own results)",
        ]
        if self.multilabel:
            lines.append(
                f"Multi-label archive: relevant = {SHARES_A_LABEL} with the query; graded "
                "relevance = Jaccard index of the two label sets (mean Jaccard@k, NDCG@k)"
            )
        lines += ["", "| measure | value |", "| --- | --- |"]
        for k in self.k:
            lines.append(f"| MAP@{k} | {self.map_retrieved[k]:.4f} |")
            lines.append(f"| MAP@{k} (normalised by min(k, relevant)) | {self.map_min[k]:.4f} |")
        for n in self.n:
            lines.append(f"| P@{n} | {self.precision[n]:.4f} |")
        for k in self.k if self.multilabel else ():
            lines.append(f"| mean Jaccard@{k} | {self.mean_jaccard[k]:.4f} |")
            lines.append(f"| NDCG@{k} (gain = Jaccard) | {self.ndcg[k]:.4f} |")
        what = "class"
        if self.multilabel:
            what = "label"
            lines += ["", "Per-label MAP: queries carrying the label; relevant = carries it too."]
        lines += ["", f"| {what} | queries | " + " | ".join(f"MAP@{k}" for k in self.k) + " |"]
        lines.append("| --- | ---: |" + " ---: |" * len(self.k))
        for c in sorted(self.class_counts):
            vals = " | ".join(f"{self.classwise[k].get(c, 0.0):.4f}" for k in self.k)
            lines.append(f"| {c} | {self.class_counts[c]} | {vals} |")
        return "\n".join(lines) + "\n"

    def pr_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["retrieved", "precision", "recall"])
        for c, p, r in zip(self.pr_cut, self.pr_precision, self.pr_recall, strict=True):
            w.writerow([int(c), f"{p:.6f}", f"{r:.6f}"])
        return buf.getvalue()

    def write_pr_csv(self, path) -> Path:
        atomic_write_text(path, self.pr_csv())
        return Path(path)

    def as_dict(self) -> dict:
        by_class = {str(k): v for k, v in self.classwise.items()}
        d = {
            "method": self.method,
            "bits": self.bits,
            "n_queries": self.n_queries,
            "n_database": self.n_database,
            "relevance": self.relevance,
            "map": {str(k): v for k, v in self.map_retrieved.items()},
            "map_min": {str(k): v for k, v in self.map_min.items()},
            "precision": {str(n): v for n, v in self.precision.items()},
            "pr": {
                "retrieved": self.pr_cut.tolist(),
                "precision": self.pr_precision.tolist(),
                "recall": self.pr_recall.tolist(),
            },
        }
        if self.multilabel:
            d["mean_jaccard"] = {str(k): v for k, v in self.mean_jaccard.items()}
            d["ndcg"] = {str(k): v for k, v in self.ndcg.items()}
            d["labelwise_map"] = by_class
        else:
            d["classwise_map"] = by_class
        return d


def evaluate(
    index: HashIndex,
    queries: Sequence[str | int] | None = None,
    k: Sequence[int] = (20, 100),
    n: Sequence[int] = (10, 20),
    pr_step: int | None = None,
    on_progress: ProgressFn | None = None,
) -> Evaluation:
    """:func:`evaluate_job` run to its end."""
    return drive(evaluate_job(index, queries, k, n, pr_step), on_progress)


def evaluate_job(
    index: HashIndex,
    queries: Sequence[str | int] | None = None,
    k: Sequence[int] = (20, 100),
    n: Sequence[int] = (10, 20),
    pr_step: int | None = None,
) -> Job[Evaluation]:
    """Evaluate ``index`` with its own tiles as queries (``None``: every tile; else archive paths,
    relative to the archive root or absolute, or record positions). ``pr_step`` defaults to 500
    (the thesis' step), reduced for small archives so the curve keeps about 20 points. Yields a
    :class:`Progress` per chunk of queries (stage ``"evaluate"``)."""
    k, n = tuple(int(v) for v in k), tuple(int(v) for v in n)
    if not k or not n or min(k + n) < 1:
        raise ValueError("k and n must be positive integers")
    size = len(index)
    if size < 2:
        raise ValueError("an index needs at least 2 tiles to be evaluated")
    if index.multilabel:
        return (yield from _evaluate_sets_job(index, queries, k, n, pr_step))
    ids = index.label_ids()
    if (ids < 0).all():
        raise ValueError("the index has no labels (class folders); nothing to evaluate against")
    qidx = _query_positions(index, queries)
    qidx = qidx[ids[qidx] >= 0]
    if qidx.size == 0:
        raise ValueError("none of the queries has a label")
    n_db = size - 1  # the query itself is left out
    if pr_step is None:
        pr_step = min(500, max(1, n_db // 20))
    kmax = min(max(k + n), n_db)
    classes = index.classes  # computed from the labels on each access: keep it
    n_relevant_all = np.bincount(ids[ids >= 0], minlength=len(classes))

    top_rel = np.zeros((qidx.size, kmax), dtype=bool)
    cuts = metrics.pr_cut_points(n_db, pr_step)
    pr_p = np.zeros(cuts.size)
    pr_r = np.zeros(cuts.size)
    rank = _ranker(index)
    small_ids = ids.astype(np.int16 if len(classes) < 32000 else np.int64)
    chunk = max(1, _CHUNK_CELLS // size)
    for a in range(0, qidx.size, chunk):
        q = qidx[a : a + chunk]
        order = rank(q)  # (c, N - 1): the full ranking of the other tiles
        rel = small_ids[order] == small_ids[q][:, None]
        top_rel[a : a + len(q)] = rel[:, :kmax]
        p, r = _pr_sums(rel, n_relevant_all[ids[q]] - 1, cuts, pr_step)
        pr_p += p
        pr_r += r
        yield Progress(a + len(q), qidx.size, "evaluating", stage="evaluate")

    n_rel = n_relevant_all[ids[qidx]] - 1
    qlabels = [classes[i] for i in ids[qidx]]
    classwise = {kk: metrics.classwise_map(top_rel, qlabels, kk, n_rel, "retrieved") for kk in k}
    counts = {c: qlabels.count(c) for c in sorted(set(qlabels))}
    return _evaluation(index, k, n, top_rel, n_rel, (cuts, pr_p, pr_r), classwise, counts)


def _evaluation(index, k, n, top_rel, n_rel, pr, classwise, counts, **extra) -> Evaluation:
    """The figures both relevance rules share, from the top of every query's ranking."""
    cuts, pr_p, pr_r = pr
    nq = len(top_rel)
    return Evaluation(
        n_queries=int(nq),
        n_database=len(index) - 1,
        k=k,
        n=n,
        map_retrieved={kk: metrics.map_at_k(top_rel, kk, n_rel, "retrieved") for kk in k},
        map_min={kk: metrics.map_at_k(top_rel, kk, n_rel, "min") for kk in k},
        precision={nn: metrics.precision_at_n(top_rel, nn) for nn in n},
        classwise=classwise,
        class_counts=counts,
        pr_cut=cuts,
        pr_precision=pr_p / nq,
        pr_recall=pr_r / nq,
        method=index.meta.method,
        bits=index.meta.bits,
        **extra,
    )


def _evaluate_sets_job(
    index: HashIndex,
    queries: Sequence[str | int] | None,
    k: tuple[int, ...],
    n: tuple[int, ...],
    pr_step: int | None,
) -> Job[Evaluation]:
    """:func:`evaluate_job` for an index with label sets: relevant = shares a label; mean
    Jaccard@k and NDCG@k (gain = Jaccard) from the same full rankings; per-label MAP."""
    sets = index.label_sets
    size = len(index)
    has = sets.any(axis=1)
    if not has.any():
        raise ValueError("every label set of the index is empty; nothing to evaluate against")
    qidx = _query_positions(index, queries)
    qidx = qidx[has[qidx]]
    if qidx.size == 0:
        raise ValueError("none of the queries has a label")
    n_db = size - 1
    if pr_step is None:
        pr_step = min(500, max(1, n_db // 20))
    kmax = min(max(k + n), n_db)
    setf = sets.astype(np.float32)
    set_size = sets.sum(axis=1).astype(np.float32)
    n_labels = len(index.label_names)

    top_rel = np.zeros((qidx.size, kmax), dtype=bool)
    n_rel = np.zeros(qidx.size, np.int64)
    jac = {kk: np.zeros(qidx.size) for kk in k}
    gain = {kk: np.zeros(qidx.size) for kk in k}
    lab_sum = {kk: np.zeros(n_labels) for kk in k}
    lab_n = np.zeros(n_labels, np.int64)
    cuts = metrics.pr_cut_points(n_db, pr_step)
    pr_p = np.zeros(cuts.size)
    pr_r = np.zeros(cuts.size)
    rank = _ranker(index)
    chunk = max(1, _MULTI_CHUNK_CELLS // size)
    for a in range(0, qidx.size, chunk):
        q = qidx[a : a + chunk]
        b = a + len(q)
        order = rank(q)  # (c, N - 1): the full ranking of the other tiles
        shared = np.take_along_axis(setf[q] @ setf.T, order, axis=1)  # labels in common
        rel = shared > 0
        union = set_size[q][:, None] + set_size[order] - shared
        jaccard = np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)
        top_rel[a:b] = rel[:, :kmax]
        n_rel[a:b] = rel.sum(axis=1)
        p, r = _pr_sums(rel, n_rel[a:b], cuts, pr_step)
        pr_p += p
        pr_r += r
        for kk in k:
            jac[kk][a:b] = metrics.mean_jaccard(jaccard, kk)
            gain[kk][a:b] = metrics.ndcg(jaccard, jaccard, kk)
            sums, _counts = metrics.labelwise_ap_sums(sets[q], order, sets, kk)
            lab_sum[kk] += sums
        lab_n += sets[q].sum(axis=0)
        yield Progress(b, qidx.size, "evaluating", stage="evaluate")

    names = index.label_names
    shown = [j for j in np.argsort(names) if lab_n[j]]
    labelwise = {kk: {names[j]: float(lab_sum[kk][j] / lab_n[j]) for j in shown} for kk in k}
    return _evaluation(
        index,
        k,
        n,
        top_rel,
        n_rel,
        (cuts, pr_p, pr_r),
        labelwise,
        {names[j]: int(lab_n[j]) for j in shown},
        relevance=SHARES_A_LABEL,
        mean_jaccard={kk: float(v.mean()) for kk, v in jac.items()},
        ndcg={kk: float(v.mean()) for kk, v in gain.items()},
    )


def _ranker(index: HashIndex):
    """For archive positions ``q``, the full ranking of the other tiles: (len(q), N - 1)."""
    if index.meta.kind == "binary":
        packed = index.packed()
        return lambda q: ranking.rank_hamming(packed, index.codes[q], None, q)
    unit = index.unit_features()
    return lambda q: ranking.rank_cosine(unit, index.features[q], None, q)


def _pr_sums(rel: np.ndarray, n_relevant: np.ndarray, cuts: np.ndarray, step: int):
    """Sums over queries of precision and recall at each cut, as :func:`rsgui.metrics.pr_curve`
    computes them, from per-segment counts (cuts every ``step`` results, then the last)."""
    q, n = rel.shape
    m = n // step
    seg = rel[:, : m * step].view(np.uint8).reshape(q, m, step).sum(axis=2, dtype=np.int64)
    if n % step:
        seg = np.concatenate([seg, rel[:, m * step :].sum(axis=1, dtype=np.int64)[:, None]], 1)
    hits = np.cumsum(seg, axis=1)
    assert hits.shape[1] == len(cuts)
    precision = (hits / cuts).sum(axis=0)
    n_rel = n_relevant.astype(np.float64)[:, None]
    recall = np.divide(hits, n_rel, out=np.zeros(hits.shape), where=n_rel > 0).sum(axis=0)
    return precision, recall


def _query_positions(index: HashIndex, queries) -> np.ndarray:
    if queries is None:
        return np.arange(len(index))
    root = Path(index.meta.archive_root).resolve() if index.meta.archive_root else None
    out = []
    for q in queries:
        if isinstance(q, int | np.integer):
            if not 0 <= int(q) < len(index):
                raise ValueError(f"query number {q} is outside the index (0..{len(index) - 1})")
            out.append(int(q))
            continue
        key = Path(str(q).strip())
        if key.is_absolute() and root is not None:
            try:
                key = key.resolve().relative_to(root)
            except ValueError:
                raise ValueError(
                    f"{q}: not a tile of the indexed archive {root}; evaluation queries must be "
                    "archive tiles (their labels are the ground truth)"
                ) from None
        i = index.position_of(key.as_posix())
        if i is None:
            raise ValueError(f"{q}: not a tile of the index")
        out.append(i)
    if not out:
        raise ValueError("the query list is empty")
    return np.asarray(out, dtype=np.int64)


def read_query_list(path) -> list[str]:
    """Paths from a text file, one a line; blank lines and lines starting with '#' are skipped.
    A CSV with a ``path`` or ``query`` column (e.g. search output) is accepted too."""
    text = Path(path).read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if lines and "," in lines[0]:
        header = [h.strip() for h in lines[0].split(",")]
        for col in ("path", "query"):
            if col in header:
                reader = csv.DictReader(io.StringIO("\n".join(lines)))
                return list(dict.fromkeys(row[col] for row in reader if row.get(col)))
    return lines


# -- several indexes, for the application's comparison ------------------------------------------


@dataclass
class EvalSummary:
    """One index's evaluation, with the file it came from (for the legend and the table)."""

    name: str  # index file stem
    path: Path
    evaluation: Evaluation

    @property
    def label(self) -> str:
        e = self.evaluation
        return f"{self.name} ({e.method}, {e.bits} bits)"


def evaluation_job(
    indexes: Sequence[str | Path], k: Sequence[int] = (20, 100), n: Sequence[int] = (10, 20)
) -> Job[list[EvalSummary]]:
    """Evaluate each labelled index, every tile a query against the others (leave-one-out);
    returns the :class:`EvalSummary` list in the order given. A bad file stops the job with a
    :class:`rsgui.errors.JobError` naming it."""
    out: list[EvalSummary] = []
    for i, path in enumerate(indexes):
        path = Path(path)
        note = f"Evaluating {path.name} ({i + 1}/{len(indexes)})…"
        yield Progress(0, None, note, stage="load")
        try:
            from rsgui.shards import ShardedIndex, open_index

            index = open_index(path)  # an .npz index, or an index folder read whole
            index = index.to_hash_index() if isinstance(index, ShardedIndex) else index
        except (OSError, ValueError) as e:
            raise JobError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from None
        try:
            result = yield from _noted(evaluate_job(index, k=tuple(k), n=tuple(n)), note)
        except ValueError as e:
            raise JobError(f"{path.name}: {e}") from None
        out.append(EvalSummary(path.stem, path, result))
    return out


def _noted(job: Job, note: str) -> Job:
    """``job`` with ``note`` on each of its progress reports; returns its value."""
    try:
        while True:
            try:
                p = next(job)
            except StopIteration as stop:
                return stop.value
            yield replace(p, note=note)
    finally:
        job.close()
