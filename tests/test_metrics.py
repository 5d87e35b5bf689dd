"""Retrieval metrics on hand-worked examples (arithmetic in the comments)."""

import numpy as np
import pytest

from rsgui.metrics import (
    average_precision,
    classwise_map,
    map_at_k,
    n_relevant_from_labels,
    pr_curve,
    pr_cut_points,
    precision_at_n,
    relevance_from_labels,
    ssm_accuracy_iou,
)

REL = np.array(
    [
        [1, 0, 1, 0, 1],  # AP = (1/1 + 2/3 + 3/5) / 3 = 2.2667/3 = 0.75556
        [0, 1, 0, 0, 0],  # AP = (1/2) / 1 = 0.5
        [0, 0, 0, 0, 0],  # no relevant result: AP = 0
        [1, 1, 0, 0, 0],  # AP = (1/1 + 2/2) / 2 = 1
    ],
    dtype=bool,
)
AP_RETRIEVED = [(1 + 2 / 3 + 3 / 5) / 3, 0.5, 0.0, 1.0]


def test_average_precision_retrieved_normalisation():
    np.testing.assert_allclose(average_precision(REL), AP_RETRIEVED)
    # MAP@5 = (0.75556 + 0.5 + 0 + 1) / 4 = 0.56389
    assert map_at_k(REL, 5) == pytest.approx(sum(AP_RETRIEVED) / 4)


def test_map_truncates_to_k():
    # top 3 of row 0 = [1,0,1]: AP = (1/1 + 2/3)/2 = 0.8333; row 1 [0,1,0]: 0.5; row 2: 0;
    # row 3 [1,1,0]: 1 -> MAP@3 = (0.8333 + 0.5 + 0 + 1)/4 = 0.58333
    assert map_at_k(REL, 3) == pytest.approx((5 / 6 + 0.5 + 0 + 1) / 4)
    # k larger than the ranking uses every column
    assert map_at_k(REL, 50) == pytest.approx(map_at_k(REL, 5))


def test_average_precision_min_normalisation():
    n_relevant = [10, 1, 4, 2]
    # Z = min(k=5, n_rel): 5, 1, 4, 2
    # row 0: (1 + 2/3 + 3/5)/5 = 0.45333; row 1: (1/2)/1 = 0.5; row 2: 0/4 = 0; row 3: 2/2 = 1
    expected = [(1 + 2 / 3 + 3 / 5) / 5, 0.5, 0.0, 1.0]
    np.testing.assert_allclose(average_precision(REL, 5, n_relevant, normalise="min"), expected)
    assert map_at_k(REL, 5, n_relevant, "min") == pytest.approx(np.mean(expected))
    # an archive with no relevant item for the query: Z = 0 -> AP = 0
    assert average_precision([[0, 0]], 2, [0], "min").tolist() == [0.0]


def test_min_normalisation_needs_counts_and_valid_names():
    with pytest.raises(ValueError, match="n_relevant"):
        map_at_k(REL, 5, normalise="min")
    with pytest.raises(ValueError, match="normalise"):
        map_at_k(REL, 5, normalise="all")
    with pytest.raises(ValueError, match="k must be positive"):
        map_at_k(REL, 0)


def test_precision_at_n():
    # P@2 per row: 1/2, 1/2, 0, 2/2 -> mean 0.5
    assert precision_at_n(REL, 2) == pytest.approx(0.5)
    # P@5: 3/5, 1/5, 0, 2/5 -> mean 6/20 = 0.3
    assert precision_at_n(REL, 5) == pytest.approx(0.3)


def test_pr_curve_every_step_and_last_point():
    rel = np.array([[1, 1, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0, 0]], dtype=bool)
    n_relevant = [4, 2]
    assert pr_cut_points(7, 3).tolist() == [3, 6, 7]
    precision, recall = pr_curve(rel, n_relevant, step=3)
    # hits after 3, 6, 7 results: row 0 -> 2, 3, 4; row 1 -> 1, 1, 1
    # precision: (2/3 + 1/3)/2 = 0.5, (3/6 + 1/6)/2 = 1/3, (4/7 + 1/7)/2 = 5/14
    np.testing.assert_allclose(precision, [0.5, 1 / 3, 5 / 14])
    # recall: (2/4 + 1/2)/2 = 0.5, (3/4 + 1/2)/2 = 0.625, (4/4 + 1/2)/2 = 0.75
    np.testing.assert_allclose(recall, [0.5, 0.625, 0.75])
    # the cut at a multiple of the step is not repeated
    assert pr_cut_points(6, 3).tolist() == [3, 6]
    assert pr_cut_points(2, 500).tolist() == [2]


def test_pr_curve_query_without_relevant_items_has_zero_recall():
    precision, recall = pr_curve([[0, 0], [1, 0]], [0, 1], step=1)
    np.testing.assert_allclose(precision, [0.5, 0.25])  # (0/1 + 1/1)/2, (0/2 + 1/2)/2
    np.testing.assert_allclose(recall, [0.5, 0.5])  # (0 + 1/1)/2 at both cuts


def test_classwise_map():
    labels = ["forest", "river", "forest", "river"]
    # forest: (0.75556 + 0)/2 = 0.37778; river: (0.5 + 1)/2 = 0.75
    result = classwise_map(REL, labels, 5)
    assert list(result) == ["forest", "river"]
    assert result["forest"] == pytest.approx(AP_RETRIEVED[0] / 2)
    assert result["river"] == pytest.approx(0.75)
    assert classwise_map(REL, [None, "a", "a", "a"], 5) == {"a": pytest.approx(0.5)}


def test_relevance_from_labels_and_counts():
    db = ["a", "b", "a", None, "c"]
    ranked = np.array([[0, 1, 2, 3], [4, 0, 3, 2], [3, 0, 1, 2]])
    rel = relevance_from_labels(["a", "c", None], ranked, db)
    assert rel.dtype == bool
    assert rel.tolist() == [
        [True, False, True, False],
        [True, False, False, False],
        [False, False, False, False],  # an unlabelled query matches nothing, not even None
    ]
    ints = relevance_from_labels(np.array([1]), np.array([[2, 0, 1]]), np.array([1, 0, 1]))
    assert ints.tolist() == [[True, True, False]]
    assert n_relevant_from_labels(["a", "b", "z", None], db).tolist() == [2, 1, 0, 0]


LABELS = np.array([0, 0, 1, 1])
# ground truth off the diagonal: similar pairs (0,1),(1,0),(2,3),(3,2); the other 8 dissimilar
S = np.array(
    [
        [1, 1, 1, -1],  # (0,2) predicted similar: false positive
        [1, 1, -1, -1],
        [-1, -1, 1, -1],  # (2,3) predicted dissimilar: false negative
        [-1, -1, 1, 1],
    ]
)


@pytest.mark.parametrize("form", ["pm1", "bool", "int8"])
def test_ssm_accuracy_iou(form):
    s = {"pm1": S, "bool": S > 0, "int8": S.astype(np.int8)}[form]
    acc, iou = ssm_accuracy_iou(s, LABELS)
    # 12 off-diagonal entries, wrong: (0,2) and (2,3) -> accuracy 10/12
    assert acc == pytest.approx(10 / 12)
    # S_pos off-diag: (0,1),(0,2),(1,0),(3,2); G_pos: (0,1),(1,0),(2,3),(3,2)
    # intersection 3, union 5 -> IoU 0.6
    assert iou == pytest.approx(0.6)


def test_ssm_packed_bits():
    # the 4x4 example inside a 12x12 matrix whose 8 extra items are singletons predicted
    # dissimilar to everything (all correct); packed rows need ceil(12/8) = 2 bytes
    big = -np.ones((12, 12), int)
    big[:4, :4] = S
    labels = np.concatenate([LABELS, np.arange(10, 18)])
    acc, iou = ssm_accuracy_iou(np.packbits(big > 0, axis=1), labels)
    # 12*11 = 132 off-diagonal entries, 2 wrong -> 130/132; IoU still 3/5
    assert acc == pytest.approx(130 / 132)
    assert iou == pytest.approx(3 / 5)


def test_ssm_excludes_the_diagonal_and_blocks():
    labels = np.array([0, 1, 2])
    s = -np.ones((3, 3))  # diagonal says "dissimilar": ignored
    assert ssm_accuracy_iou(s, labels) == (1.0, 1.0)  # nothing similar anywhere: IoU 1 by rule
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    s = rng.choice([-1, 1], (40, 40))
    assert ssm_accuracy_iou(s, labels, block=7) == pytest.approx(ssm_accuracy_iou(s, labels))
    with pytest.raises(ValueError, match="similarity must be"):
        ssm_accuracy_iou(np.ones((3, 4)), labels[:3])
