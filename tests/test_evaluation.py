"""Evaluation of an index against its labels, checked against a brute-force computation."""

from __future__ import annotations

import numpy as np
import pytest

from rsgui import metrics
from rsgui.index_store import HashIndex, IndexMeta
from rsgui.services.evaluation import evaluate, evaluate_job, read_query_list


def _index(codes, labels, kind="binary", root="/archive"):
    meta = IndexMeta("spectral", ("B02", "B03"), codes.shape[1], kind=kind, archive_root=root)
    paths = [f"{lab or 'x'}/t{i}.tif" for i, lab in enumerate(labels)]
    return HashIndex.from_codes(codes, paths, labels, meta)


def _brute(codes, y, kind):
    """Full leave-one-out rankings, ties by archive order, relevance by label."""
    n = len(codes)
    if kind == "binary":
        b = codes > 0
        d = (b[:, None, :] != b[None, :, :]).sum(-1).astype(float)
    else:
        u = codes / np.linalg.norm(codes, axis=1, keepdims=True)
        d = -(u @ u.T)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, : n - 1]
    return y[order] == y[:, None]


@pytest.mark.parametrize(
    ("kind", "n", "step"), [("binary", 90, 10), ("binary", 57, 500), ("float", 64, 7)]
)
def test_matches_brute_force(kind, n, step):
    rng = np.random.default_rng(n)
    y = np.arange(n) % 4
    codes = rng.standard_normal((n, 12)) + y[:, None] * 0.7 * rng.standard_normal(12)
    labels = [f"c{v}" for v in y]
    ev = evaluate(_index(codes, labels, kind), k=(5, 20), n=(3, 10), pr_step=step)
    rel = _brute(codes, y, kind)
    n_rel = np.bincount(y)[y] - 1
    for k in (5, 20):
        assert ev.map_retrieved[k] == pytest.approx(metrics.map_at_k(rel, k))
        assert ev.map_min[k] == pytest.approx(metrics.map_at_k(rel, k, n_rel, "min"))
        cw = metrics.classwise_map(rel, labels, k)
        assert ev.classwise[k] == pytest.approx(cw)
    for m in (3, 10):
        assert ev.precision[m] == pytest.approx(metrics.precision_at_n(rel, m))
    p, r = metrics.pr_curve(rel, n_rel, step)
    np.testing.assert_allclose(ev.pr_precision, p)
    np.testing.assert_allclose(ev.pr_recall, r)
    assert ev.pr_recall[-1] == pytest.approx(1.0)
    assert ev.n_queries == n and ev.n_database == n - 1


def test_perfect_codes_score_one_and_exclude_the_query():
    codes = np.repeat(np.eye(3) * 2 - 1, 5, axis=0)  # 3 classes x 5 identical codes
    labels = [c for c in "abc" for _ in range(5)]
    ev = evaluate(_index(codes, labels), k=(4,), n=(4, 5))
    assert ev.map_retrieved[4] == 1.0 and ev.map_min[4] == 1.0
    assert ev.precision[4] == 1.0
    assert ev.precision[5] == pytest.approx(4 / 5)  # only 4 others share the class
    assert ev.class_counts == {"a": 5, "b": 5, "c": 5}


def test_default_pr_step_is_smaller_for_small_archives():
    codes = np.random.default_rng(0).standard_normal((41, 8))
    ev = evaluate(_index(codes, ["a", "b"] * 20 + ["a"]))
    assert ev.pr_cut[0] == 2 and ev.pr_cut[-1] == 40


def test_query_subset_by_path_position_and_absolute_path():
    rng = np.random.default_rng(1)
    codes = rng.standard_normal((30, 8))
    labels = ["a", "b", "c"] * 10
    index = _index(codes, labels)
    full = evaluate(index, k=(5,), n=(5,))
    sub = evaluate(index, queries=[index.paths[0], 4, "/archive/" + index.paths[8]], k=(5,), n=(5,))
    assert sub.n_queries == 3 and sub.n_database == 29
    assert sub.class_counts == {"a": 1, "b": 1, "c": 1}
    assert full.n_queries == 30
    for bad in (["a/nope.tif"], [99], ["/elsewhere/a/t0.tif"], []):
        with pytest.raises(ValueError):
            evaluate(index, queries=bad)


def test_unlabelled_and_tiny_indexes_are_refused():
    codes = np.random.default_rng(2).standard_normal((6, 8))
    with pytest.raises(ValueError, match="no labels"):
        evaluate(_index(codes, [None] * 6))
    with pytest.raises(ValueError, match="at least 2"):
        evaluate(_index(codes[:1], ["a"]))
    with pytest.raises(ValueError):
        evaluate(_index(codes, ["a"] * 6), k=(0,))


def test_unlabelled_tiles_are_never_relevant_nor_queries():
    codes = np.ones((6, 8))
    labels = ["a", "a", None, "b", None, "b"]
    ev = evaluate(_index(codes, labels), k=(5,), n=(1,))
    assert ev.n_queries == 4
    assert ev.class_counts == {"a": 2, "b": 2}
    # identical codes rank in archive order: a0 and a1 find each other first (AP 1), b3 finds
    # b5 fifth (AP 1/5), b5 finds b3 fourth (AP 1/4); unlabelled tiles count as misses
    assert ev.map_retrieved[5] == pytest.approx((1 + 1 + 0.2 + 0.25) / 4)
    assert ev.precision[1] == pytest.approx(0.5)


def test_report_csv_and_cancel(tmp_path):
    rng = np.random.default_rng(3)
    index = _index(rng.standard_normal((40, 8)), ["a", "b"] * 20)
    ev = evaluate(index, k=(10,), n=(5,), pr_step=10)
    md = ev.to_markdown()
    assert "| MAP@10 |" in md and "| P@5 |" in md and "| a | 20 |" in md
    path = ev.write_pr_csv(tmp_path / "pr.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "retrieved,precision,recall" and len(lines) == 1 + 4
    assert set(ev.as_dict()) >= {"map", "precision", "classwise_map", "pr"}
    job = evaluate_job(index)  # cancel: the consumer closes the job at a yield
    first = next(job)
    assert first.stage == "evaluate" and first.total == len(index)
    job.close()
    with pytest.raises(StopIteration):
        next(job)


def test_read_query_list(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text("# comment\n\na/1.tif\n  b/2.tif  \n")
    assert read_query_list(f) == ["a/1.tif", "b/2.tif"]
    f.write_text("query,rank,path,distance,label\nq.tif,1,a/1.tif,0,a\nq.tif,2,b/2.tif,3,b\n")
    assert read_query_list(f) == ["a/1.tif", "b/2.tif"]
