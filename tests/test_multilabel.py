"""Multi-label retrieval: the metrics on hand-made cases, label sets in the index files, and
evaluation of indexes with label sets (a perfect index must beat a random one)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rsgui import metrics
from rsgui.errors import IndexFileError
from rsgui.index_store import HashIndex, IndexMeta
from rsgui.services.evaluation import SHARES_A_LABEL, evaluate

# labels A B C D; the query has A and B
Q = np.array([[1, 1, 0, 0]], bool)
DB = np.array(
    [
        [1, 0, 0, 0],  # A: shares 1 of 2 -> Jaccard 1/2
        [0, 0, 1, 0],  # C: shares nothing
        [1, 1, 0, 0],  # A B: the same set -> 1
        [0, 1, 1, 1],  # B C D: shares 1 of 4 -> 1/4
    ],
    bool,
)
RANK = np.array([[0, 1, 2, 3]])


def test_relevance_shared_and_jaccard():
    assert metrics.relevance_from_label_sets(Q, RANK, DB).tolist() == [[True, False, True, True]]
    assert metrics.shared_label_counts(Q, RANK, DB).tolist() == [[1, 0, 2, 1]]
    assert metrics.jaccard_from_label_sets(Q, RANK, DB).tolist() == [[0.5, 0.0, 1.0, 0.25]]
    assert metrics.n_relevant_from_label_sets(Q, DB).tolist() == [3]
    # reordered results follow the ranking
    assert metrics.jaccard_from_label_sets(Q, [[3, 2]], DB).tolist() == [[0.25, 1.0]]


def test_empty_sets_are_never_relevant():
    empty = np.zeros((1, 4), bool)
    db = np.vstack([DB, np.zeros((1, 4), bool)])
    assert not metrics.relevance_from_label_sets(empty, [[0, 4]], db).any()
    assert metrics.jaccard_from_label_sets(empty, [[0, 4]], db).tolist() == [[0.0, 0.0]]
    assert metrics.jaccard_from_label_sets(Q, [[4]], db).tolist() == [[0.0]]


def test_map_and_mean_jaccard_exact():
    rel = metrics.relevance_from_label_sets(Q, RANK, DB)
    assert metrics.map_at_k(rel, 4) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert metrics.precision_at_n(rel, 2) == pytest.approx(0.5)
    jac = metrics.jaccard_from_label_sets(Q, RANK, DB)
    assert metrics.mean_jaccard_at_k(jac, 4) == pytest.approx(1.75 / 4)
    assert metrics.mean_jaccard_at_k(jac, 2) == pytest.approx(0.25)


def test_ndcg_exact():
    jac = metrics.jaccard_from_label_sets(Q, RANK, DB)
    ideal = np.array([[0.25, 1.0, 0.0, 0.5]])  # any order: the best k are taken
    l3, l5 = math.log2(3), math.log2(5)
    assert metrics.ndcg_at_k(jac, ideal, 2) == pytest.approx(0.5 / (1 + 0.5 / l3))
    want4 = (0.5 + 0 + 1 / 2 + 0.25 / l5) / (1 + 0.5 / l3 + 0.25 / 2)
    assert metrics.ndcg_at_k(jac, ideal, 4) == pytest.approx(want4)
    best = np.array([[1.0, 0.5, 0.25, 0.0]])
    assert metrics.ndcg_at_k(best, ideal, 4) == pytest.approx(1.0)
    assert metrics.ndcg(np.zeros((1, 3)), np.zeros((1, 5)), 3).tolist() == [0.0]


def test_labelwise_map_exact():
    got = metrics.labelwise_map(Q, RANK, DB, ["A", "B", "C", "D"])
    # A: results carry A at ranks 1 and 3; B: at ranks 3 and 4; C and D: no query has them
    assert got == pytest.approx({"A": (1 + 2 / 3) / 2, "B": (1 / 3 + 2 / 4) / 2})
    assert list(got) == ["A", "B"]


def test_metrics_refuse_mismatched_shapes():
    with pytest.raises(ValueError):
        metrics.relevance_from_label_sets(Q, [[0], [1]], DB)
    with pytest.raises(ValueError):
        metrics.relevance_from_label_sets(np.ones((1, 3), bool), RANK, DB)
    with pytest.raises(ValueError):
        metrics.ndcg(np.zeros((2, 3)), np.zeros((1, 3)), 2)


# -- index files ---------------------------------------------------------------------------------


def _index(codes: np.ndarray, sets: np.ndarray | None, names=()) -> HashIndex:
    n, bits = codes.shape
    meta = IndexMeta(method="spectral", band_names=("B02",), bits=bits, archive_root="/x")
    paths = [f"p{i:03d}" for i in range(n)]
    return HashIndex.from_codes(codes, paths, None, meta, label_sets=sets, label_names=names)


def _random_sets(n: int = 80, n_labels: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sets = np.zeros((n, n_labels), bool)
    for i in range(n):
        sets[i, rng.choice(n_labels, rng.integers(1, 3), replace=False)] = True
    return sets


NAMES6 = tuple("ABCDEF")


def test_label_sets_round_trip(tmp_path):
    sets = _random_sets(30, 6)
    codes = np.random.default_rng(1).standard_normal((30, 16))
    idx = _index(codes, sets, NAMES6)
    assert idx.multilabel and idx.tile_label_names(0) == [
        NAMES6[j] for j in np.flatnonzero(sets[0])
    ]
    idx.save(tmp_path / "i")
    meta = json.loads((tmp_path / "i.json").read_text())
    assert meta["label_names"] == list(NAMES6)
    back = HashIndex.load(tmp_path / "i")
    np.testing.assert_array_equal(back.label_sets, sets)
    assert back.label_names == NAMES6 and back.labelled_positions().size == 30


def test_old_index_without_label_sets_loads(tmp_path):
    idx = _index(np.ones((5, 8)), None)
    idx.save(tmp_path / "old")
    back = HashIndex.load(tmp_path / "old")
    assert back.label_sets is None and back.label_names == () and not back.multilabel


def test_damaged_label_sets_refused(tmp_path):
    idx = _index(np.ones((5, 8)), _random_sets(5, 6), NAMES6)
    idx.save(tmp_path / "i")
    meta_path = tmp_path / "i.json"
    meta = json.loads(meta_path.read_text())
    for bad in (list("ABCDEFGHIJ"), "ABC", [1, 2, 3], ["A", "A"]):
        meta_path.write_text(json.dumps({**meta, "label_names": bad}))
        with pytest.raises(IndexFileError, match="label"):
            HashIndex.load(tmp_path / "i")
    with pytest.raises(ValueError, match="label sets must be"):
        _index(np.ones((5, 8)), np.ones((4, 6), bool), NAMES6)
    with pytest.raises(ValueError, match="distinct"):
        _index(np.ones((5, 8)), np.ones((5, 2), bool), ("A", "A"))


# -- evaluation ----------------------------------------------------------------------------------


def test_perfect_index_beats_random_one():
    sets = _random_sets(80, 6, seed=3)
    perfect = _index(np.repeat(sets, 4, axis=1).astype(float) * 2 - 1, sets, NAMES6)
    noise = np.random.default_rng(7).standard_normal((80, 24))
    random = _index(noise, sets, NAMES6)
    good = evaluate(perfect, k=(10,), n=(10,))
    bad = evaluate(random, k=(10,), n=(10,))
    assert good.relevance == SHARES_A_LABEL and good.multilabel
    assert good.map_retrieved[10] > bad.map_retrieved[10]
    assert good.mean_jaccard[10] > bad.mean_jaccard[10] + 0.2
    assert good.ndcg[10] > bad.ndcg[10] + 0.2
    assert good.precision[10] > bad.precision[10]
    for e in (good, bad):
        for v in (*e.map_retrieved.values(), *e.mean_jaccard.values(), *e.ndcg.values()):
            assert 0 < v <= 1
    report = good.to_markdown()
    assert "relevant = shares at least one label" in report and "NDCG@10" in report
    assert "| label | queries |" in report
    d = good.as_dict()
    assert d["relevance"] == SHARES_A_LABEL and set(d["labelwise_map"]["10"]) <= set(NAMES6)


def test_single_labels_as_sets_agree_with_class_evaluation():
    """One label per tile: sharing a label is having the same label, Jaccard is 0/1, so the
    multi-label figures must equal the single-label ones."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 40)
    sets = np.eye(4, dtype=bool)[labels]
    codes = rng.standard_normal((40, 16))
    meta = IndexMeta(method="spectral", band_names=("B02",), bits=16, archive_root="/x")
    paths = [f"p{i}" for i in range(40)]
    single = HashIndex.from_codes(codes, paths, [str("ABCD"[v]) for v in labels], meta)
    multi = HashIndex.from_codes(codes, paths, None, meta, label_sets=sets, label_names="ABCD")
    a = evaluate(single, k=(5, 10), n=(5,))
    b = evaluate(multi, k=(5, 10), n=(5,))
    assert not a.multilabel and b.multilabel
    for k in (5, 10):
        assert b.map_retrieved[k] == pytest.approx(a.map_retrieved[k])
        assert b.map_min[k] == pytest.approx(a.map_min[k])
        assert b.classwise[k] == pytest.approx(a.classwise[k])
    assert b.precision[5] == pytest.approx(a.precision[5])
    assert b.mean_jaccard[5] == pytest.approx(a.precision[5])
    np.testing.assert_allclose(b.pr_precision, a.pr_precision)
    np.testing.assert_allclose(b.pr_recall, a.pr_recall)


def test_unlabelled_queries_skipped_and_empty_refused():
    sets = _random_sets(20, 6)
    sets[:5] = False
    idx = _index(np.random.default_rng(0).standard_normal((20, 8)), sets, NAMES6)
    assert evaluate(idx, k=(5,), n=(5,)).n_queries == 15
    none = _index(np.ones((4, 8)), np.zeros((4, 6), bool), NAMES6)
    with pytest.raises(ValueError, match="empty"):
        evaluate(none, k=(2,), n=(2,))


def test_evaluation_panel_shows_the_multilabel_figures(qtbot, tmp_path):
    from rsgui.app.panels.evaluation import EvaluationPanel
    from rsgui.app.state import AppState
    from rsgui.services.evaluation import EvalSummary

    sets = _random_sets(40, 6, seed=2)
    idx = _index(np.repeat(sets, 4, axis=1).astype(float) * 2 - 1, sets, NAMES6)
    e = evaluate(idx, k=(10,), n=(5,))
    panel = EvaluationPanel(AppState())
    qtbot.addWidget(panel)
    try:
        panel.set_results([EvalSummary("perfect", tmp_path / "perfect.npz", e)])
        assert panel.table_value(0, "Jaccard@10") == f"{e.mean_jaccard[10]:.4f}"
        assert panel.table_value(0, "NDCG@10") == f"{e.ndcg[10]:.4f}"
        assert panel.table_value(0, "MAP@10") == f"{e.map_retrieved[10]:.4f}"
        assert "Per-label" in panel.class_plot.getPlotItem().titleLabel.text
        assert set(panel.class_names) <= set(NAMES6)
    finally:
        panel.shutdown()


def test_cli_evaluate_prints_the_multilabel_figures(tmp_path, capsys):
    from rsgui.cli import main

    sets = _random_sets(30, 6, seed=4)
    codes = np.random.default_rng(2).standard_normal((30, 16))
    meta = IndexMeta(method="spectral", band_names=("B02",), bits=16)  # no archive to check
    idx = HashIndex.from_codes(
        codes, [f"p{i}" for i in range(30)], None, meta, label_sets=sets, label_names=NAMES6
    )
    idx.save(tmp_path / "ml")
    assert main(["evaluate", str(tmp_path / "ml.npz"), "--k", "5", "--n", "5"]) == 0
    out = capsys.readouterr().out
    assert "relevant = shares at least one label" in out
    assert "| mean Jaccard@5 |" in out and "| NDCG@5 (gain = Jaccard) |" in out
    assert "| label | queries | MAP@5 |" in out
    assert main(["evaluate", str(tmp_path / "ml.npz"), "--sample", "7", "--k", "5"]) == 0
    assert "7 queries against 29 tiles" in capsys.readouterr().out
