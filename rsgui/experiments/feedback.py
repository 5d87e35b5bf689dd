"""``rsgui-cli experiment feedback ARCHIVE --out DIR``: an analyst refining a search, simulated.

On a labelled archive and its index (``--index``, or a ``spectral`` index built first with
``--bands`` and ``--bits``): each query tile (up to 100 per class, fewer where a class is smaller)
starts a search; at each round the analyst marks the top 20 results as relevant or not by their
class, and each strategy re-ranks with the marks. P@20 and MAP@100 are measured after 0 to 5
rounds on the *residual* ranking: the query and every tile already marked are left out of the
ranking (they are the search's examples), so a strategy gains only by finding new relevant tiles,
never by moving the marked ones up. ``single`` keeps the one-example ranking throughout (the
analyst just reads further down), which is what refining must beat.

Strategies: ``single``; ``combine-sum`` / ``combine-majority`` / ``combine-min`` (the query and
the tiles marked relevant as positive examples); ``negatives-W`` (``combine-sum`` with the tiles
marked not relevant pushed down, weight W); ``logreg`` and ``svm`` (a linear model fitted on the
marked tiles' code bits). Everything ranks with the services (:mod:`rsgui.services.feedback`).

Writes ``feedback.csv``, ``results.json`` and ``report.md`` (the tables and the refine model's fit
time on 27,000 tiles).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from rsgui import metrics
from rsgui.atomic import atomic_write_text
from rsgui.progress import Progress, drive

ROUNDS = 5
MARKS = 20  # results marked per round
K_MAP = 100
N_P = 20
NEG_WEIGHTS = (0.25, 0.5, 1.0)
TIMING_TILES = 27_000


def strategies() -> list[str]:
    return (
        ["single", "combine-sum", "combine-majority", "combine-min"]
        + [f"negatives-{w:g}" for w in NEG_WEIGHTS]
        + ["logreg", "svm"]
    )


def pick_queries(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Up to ``per_class`` positions of each class (all of a smaller class), sorted."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == c)
        out.append(rng.permutation(members)[: min(per_class, members.size)])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)


def _scores(index, strategy: str, pos: list[int], neg: list[int], seen: np.ndarray):
    """Scores of every tile for one strategy, examples given as index positions."""
    from rsgui.services import feedback as fb

    codes = index.codes if index.meta.kind == "binary" else index.features
    p, n = codes[pos], codes[neg]
    if strategy == "single":
        return fb.combined_scores(index, codes[pos[:1]], None, "sum")
    if strategy.startswith("combine-"):
        return fb.combined_scores(index, p, None, strategy.split("-", 1)[1])
    if strategy.startswith("negatives-"):
        return fb.combined_scores(index, p, n, "sum", float(strategy.split("-", 1)[1]))
    return fb.refined_scores(index, p, n, strategy, exclude=seen)[0]


def simulate(
    index, queries: np.ndarray, names: list[str], rounds: int = ROUNDS, marks: int = MARKS
):
    """A job: per strategy, (rounds + 1) x (P@20, MAP@100) averaged over the queries."""
    from rsgui.ranking import rank_scores

    labels = index.label_ids()
    p_at = {s: np.zeros((rounds + 1, len(queries))) for s in names}
    ap_at = {s: np.zeros((rounds + 1, len(queries))) for s in names}
    t0 = time.perf_counter()
    total = len(names) * len(queries)
    done = 0
    for s in names:
        for qi, q in enumerate(queries.tolist()):
            pos, neg = [q], []
            for r in range(rounds + 1):
                seen = np.array(pos + neg, np.int64)
                if r == 0:
                    score = _scores(index, "single", pos, neg, seen)
                else:
                    score = _scores(index, s, pos, neg, seen)
                order = rank_scores(score, max(K_MAP, marks), None, seen)
                rel = labels[order] == labels[q]
                # a ranking shorter than N (a small archive nearly all marked) counts the
                # missing places as misses; an empty one scores 0
                p_at[s][r, qi] = rel[:N_P].sum() / N_P
                ap_at[s][r, qi] = (
                    metrics.average_precision(rel[None, :K_MAP], K_MAP)[0] if rel.size else 0.0
                )
                for i, ok in zip(order[:marks].tolist(), rel[:marks].tolist(), strict=True):
                    (pos if ok else neg).append(i)
            done += 1
            if done % 10 == 0 or done == total:
                el = time.perf_counter() - t0
                yield Progress(done, total, f"{s}", stage="simulate", rate=done / el,
                               eta_s=el / done * (total - done))  # fmt: skip
    return {
        s: {"p20": p_at[s].mean(axis=1).tolist(), "map100": ap_at[s].mean(axis=1).tolist()}
        for s in names
    }


def time_refine(index, model: str, n_tiles: int = TIMING_TILES, repeats: int = 20) -> dict:
    """Fit + score + full ranking of ``n_tiles`` tiles (the index's codes repeated to that size)
    with 21 positives and 20 negatives, as after one round; seconds (median, max) and parts."""
    from rsgui.index_store import HashIndex, IndexMeta
    from rsgui.ranking import rank_scores
    from rsgui.services import feedback as fb

    codes = index.codes if index.meta.kind == "binary" else index.features
    rows = np.resize(np.arange(len(index)), n_tiles)
    meta = IndexMeta(index.meta.method, index.meta.band_names, index.meta.bits, index.meta.kind)
    big = HashIndex(
        meta, [str(i) for i in range(n_tiles)], [index.labels[i] for i in rows],
        **({"codes": codes[rows]} if meta.kind == "binary" else {"features": codes[rows]}),
    )  # fmt: skip
    fb.code_matrix(big)  # unpacked once per index, as in the application
    labels = big.label_ids()
    q = 0
    same = np.flatnonzero(labels == labels[q])[1:22]
    other = np.flatnonzero(labels != labels[q])[:20]
    fb.refined_scores(big, codes[rows][same], codes[rows][other], model)  # imports, warm-up
    total, fits = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        s, fitted = fb.refined_scores(big, codes[rows][same], codes[rows][other], model)
        rank_scores(s, 100)
        total.append(time.perf_counter() - t)
        fits.append(fitted.fit_s)
    return {
        "tiles": n_tiles, "model": model,
        "fit_median_s": float(np.median(fits)), "fit_max_s": float(np.max(fits)),
        "fit_score_rank_median_s": float(np.median(total)),
        "fit_score_rank_max_s": float(np.max(total)),
    }  # fmt: skip


def table_markdown(results: dict, metric: str, rounds: int) -> str:
    head = "| strategy | " + " | ".join(f"round {r}" for r in range(rounds + 1)) + " |"
    sep = "|---|" + "---:|" * (rounds + 1)
    lines = [head, sep]
    for s, vals in results.items():
        lines.append(f"| {s} | " + " | ".join(f"{v:.4f}" for v in vals[metric]) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from rsgui.cli.progress import StageBars
    from rsgui.index_store import HashIndex, describe_bands

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if getattr(args, "index", None):
        index = HashIndex.load(args.index)
        index_src = str(args.index)
    else:
        from rsgui.archive import Archive
        from rsgui.services.indexing import index_job

        archive = Archive.open(args.archive)
        bits = int(str(args.bits).split(",")[0]) if args.bits else 64
        with StageBars({"encode": "index"}) as bars:
            res = drive(
                index_job(archive, "spectral", out / "index", bands=getattr(args, "bands", None),
                          bits=bits, seed=args.seed),
                bars,
            )  # fmt: skip
        index, index_src = res.index, str(res.path)
    labels = index.label_ids()
    if (labels < 0).all():
        raise ValueError(f"{args.archive}: the archive has no class labels to simulate marks with")
    per_class = getattr(args, "queries_per_class", None) or 100
    queries = pick_queries(labels, per_class, args.seed)
    names = strategies()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    with StageBars({"simulate": "simulate"}) as bars:
        results = drive(simulate(index, queries, names), bars)
    sim_s = time.perf_counter() - t0
    timing = [time_refine(index, m) for m in ("logreg", "svm")]
    load1 = os.getloadavg()
    counts = {c: int((labels[queries] == i).sum()) for i, c in enumerate(index.classes)}
    info = {
        "archive": str(args.archive), "index": index_src, "method": index.meta.method,
        "bands": describe_bands(index.meta.band_names), "bits": index.meta.bits,
        "tiles": len(index), "queries": len(queries), "queries_per_class": counts,
        "rounds": ROUNDS, "marks_per_round": MARKS, "simulate_s": sim_s,
        "load_average_before": load0, "load_average_after": load1,
    }  # fmt: skip
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["strategy", "round", "p20", "map100"])
    for s, v in results.items():
        for r in range(ROUNDS + 1):
            w.writerow([s, r, f"{v['p20'][r]:.4f}", f"{v['map100'][r]:.4f}"])
    atomic_write_text(out / "feedback.csv", buf.getvalue())
    atomic_write_text(
        out / "results.json",
        json.dumps({"info": info, "results": results, "timing": timing}, indent=1) + "\n",
    )
    best1 = max((s for s in names if s != "single"), key=lambda s: results[s]["map100"][1])
    report = (
        f"# Simulated analyst: {args.archive}\n\n"
        f"Index: {index.meta.method}, {info['bands']}, {index.meta.bits} bits, {len(index)} tiles "
        f"({index_src}). {len(queries)} queries (up to {per_class} per class), {MARKS} results "
        f"marked per round by class; residual ranking (query and marked tiles left out). "
        f"Simulation {sim_s:.0f} s; load average {load0[0]:.2f} before, {load1[0]:.2f} after.\n\n"
        f"## P@20\n\n{table_markdown(results, 'p20', ROUNDS)}\n"
        f"## MAP@100\n\n{table_markdown(results, 'map100', ROUNDS)}\n"
        f"After one round the best strategy by MAP@100 is {best1}: "
        f"{results[best1]['map100'][1]:.4f} against {results['single']['map100'][1]:.4f} for "
        f"the single example (P@20 {results[best1]['p20'][1]:.4f} against "
        f"{results['single']['p20'][1]:.4f}).\n\n"
        "## Refine model at 27,000 tiles (21 positives, 20 negatives)\n\n"
        "| model | fit median s | fit max s | fit + score + rank median s | max s |\n"
        "|---|---:|---:|---:|---:|\n"
        + "".join(
            f"| {t['model']} | {t['fit_median_s']:.4f} | {t['fit_max_s']:.4f} | "
            f"{t['fit_score_rank_median_s']:.4f} | {t['fit_score_rank_max_s']:.4f} |\n"
            for t in timing
        )
    )
    atomic_write_text(out / "report.md", report)
    sys.stdout.write(report)
    return 0
