"""The query panel as an analyst uses it: drop several tiles, mark results (more like this, not
wanted), refine, undo and accept, filter, save the search and reopen it. Every ranking shown is
checked against a brute-force reference over the index's unpacked code bits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from rsgui.app.panels.query import QueryPanel
from rsgui.codes import unpack_codes
from rsgui.services import feedback as fb


@pytest.fixture
def state(make_state, indexed_archive):
    return make_state(indexed_archive)


@pytest.fixture
def panel(show, state):
    p = show(QueryPanel(state), (1000, 800))
    yield p
    state.tasks.wait_idle(10)


def drop_files(widget, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)  # fmt: skip
    widget.dropEvent(event)


def positions(state, results) -> list[int]:
    index = state.index
    root = str(state.archive.root) + "/"
    return [index.position_of(r.path[len(root) :]) for r in results.rows]


def brute_combined(state, pos_at, neg_at, combine="sum", weight=fb.DEFAULT_NEG_WEIGHT, k=20):
    index = state.index
    bits = unpack_codes(index.codes, index.meta.bits) > 0
    d = (bits[pos_at][:, None, :] != bits[None, :, :]).sum(-1)
    part = d.sum(0) if combine == "sum" else d.min(0)
    score = part.astype(np.float64)
    if neg_at:
        nd = (bits[neg_at][:, None, :] != bits[None, :, :]).sum(-1).mean(0)
        score = part / len(pos_at) - weight * nd
    skip = set(pos_at) | set(neg_at)
    return [i for _, i in sorted((score[i], i) for i in range(len(index)) if i not in skip)][:k]


def pos_of(state, ref) -> int:
    return state.index.position_of(state.archive.records[ref.archive_index].path)


def select_rows(panel, rows) -> None:
    sel = panel.view.selectionModel()
    sel.clearSelection()
    for r in rows:
        sel.select(panel.model.index(r), QItemSelectionModel.SelectionFlag.Select)


def wait_results(qtbot, state, check, timeout=15_000):
    qtbot.waitUntil(
        lambda: not state.tasks.active and state.results is not None and check(), timeout=timeout
    )


def test_drop_several_tiles_is_one_search(qtbot, panel, state):
    a = state.archive
    files = [a.root / a.records[i].path for i in (10, 11, 12)]
    drop_files(panel.drop, files)
    wait_results(qtbot, state, lambda: len(state.results.examples) == 3)
    session = state.session
    assert [r.archive_index for r in session.positives] == [10, 11, 12]
    pos_at = [pos_of(state, r) for r in session.positives]
    assert positions(state, state.results) == brute_combined(state, pos_at, [])
    assert panel.examples_view.isVisibleTo(panel) and panel.examples_model.rowCount() == 3
    assert "3 wanted" in panel.examples_label.text()
    assert "and 2 more" in panel.summary.text() and "sum of 3 example(s)" in panel.summary.text()
    # a further drop joins the set
    drop_files(panel, [a.root / a.records[13].path])
    wait_results(qtbot, state, lambda: len(state.results.examples) == 4)
    # the combination can change: nearest example
    panel.combine_combo.setCurrentIndex(panel.combine_combo.findData("min"))
    panel.combine_combo.activated.emit(panel.combine_combo.currentIndex())
    wait_results(qtbot, state, lambda: "min of 4" in state.results.strategy)
    pos_at = [pos_of(state, r) for r in state.session.positives]
    assert positions(state, state.results) == brute_combined(state, pos_at, [], "min")


def test_mark_refine_undo_accept_save_and_reopen(qtbot, panel, state, make_state, show, tmp_path):
    state.set_query(state.tile_ref(0))
    wait_results(qtbot, state, lambda: len(state.results.rows) == 20)
    qlabel = state.results.query_label
    rows = state.results.rows
    good = [i for i, r in enumerate(rows) if r.label == qlabel][:2]
    bad = [i for i, r in enumerate(rows) if r.label != qlabel][:2]
    assert good and bad, "the demo ranking mixes classes"
    good_paths = [rows[i].path for i in good]
    bad_paths = [rows[i].path for i in bad]
    # more like this
    select_rows(panel, good)
    assert panel.more_button.isEnabled()
    panel.more_button.click()
    wait_results(qtbot, state, lambda: len(state.results.examples) == 1 + len(good))
    assert not {r.path for r in state.results.rows} & set(good_paths), "examples leave the results"
    # not wanted (by the results' context action)
    idx = [i for i, r in enumerate(state.results.rows) if r.path in bad_paths]
    panel.mark_selected(-1, [panel.model.index(i) for i in idx])
    wait_results(qtbot, state, lambda: len(state.results.negatives) == len(idx))
    session = state.session
    pos_at = [pos_of(state, r) for r in session.positives]
    neg_at = [pos_of(state, r) for r in session.negatives]
    combined = state.results
    assert positions(state, combined) == brute_combined(state, pos_at, neg_at)
    assert "not wanted" in panel.examples_label.text()
    # refine: a second ranking, shown with Accept / Undo
    assert panel.refine_button.isEnabled()
    panel.refine_combo.setCurrentIndex(panel.refine_combo.findData("logreg"))
    panel.refine_button.click()
    wait_results(qtbot, state, lambda: state.results is not combined)
    refined = state.results
    assert panel.banner.isVisibleTo(panel) and "Refined ranking" in panel.banner_label.text()
    assert refined.strategy == "refined by logistic regression"
    fitted = fb.fit_refiner(state.index, state.index.codes[pos_at], state.index.codes[neg_at],
                            "logreg", exclude=pos_at + neg_at)  # fmt: skip
    x = unpack_codes(state.index.codes, state.index.meta.bits).astype(np.float64)
    want = -(x @ fitted.coef + fitted.intercept)
    skip = set(pos_at + neg_at)
    ref = [i for _, i in sorted((want[i], i) for i in range(len(x)) if i not in skip)][:20]
    assert positions(state, refined) == ref, "the refined ranking is the model's, exactly"
    assert any("was #" in it.subtitle or "new" in it.subtitle for it in panel.model.items)
    # undo: the combined ranking comes back
    panel.undo_button.click()
    assert state.results is combined and not panel.banner.isVisibleTo(panel)
    assert positions(state, state.results) == brute_combined(state, pos_at, neg_at)
    # refine again and accept
    panel.refine_button.click()
    wait_results(qtbot, state, lambda: state.results is not combined)
    panel.accept_button.click()
    assert not panel.banner.isVisibleTo(panel) and state.session.refined_by == "logreg"
    assert positions(state, state.results) == ref
    accepted = state.results
    panel.search()  # an accepted refinement goes on ranking the next searches
    wait_results(qtbot, state, lambda: state.results is not accepted)
    assert state.results.strategy.startswith("refined") and positions(state, state.results) == ref
    # save, then reopen in a fresh window state
    out = panel.save_search(tmp_path / "s.json")
    saved = json.loads(out.read_text())
    assert saved["format"] == "rsgui-search" and saved["refine"] == "logreg"
    assert len(saved["positives"]) == len(pos_at) and len(saved["negatives"]) == len(neg_at)
    state2 = make_state(state.archive.root)
    panel2 = show(QueryPanel(state2), (1000, 800))
    assert panel2.open_search(out)
    wait_results(qtbot, state2, lambda: len(state2.results.rows) == 20)
    assert [r.path for r in state2.results.rows] == [r.path for r in state.results.rows]
    assert [str(r.path) for r in state2.session.negatives] == [
        str(r.path) for r in session.negatives
    ]
    # exports work as before
    table = panel.export(tmp_path / "r.csv").read_text().splitlines()
    assert len(table) == 21 and table[0].startswith("query,rank,path")
    gj = json.loads(panel.export(tmp_path / "r.geojson").read_text())
    assert len(gj["properties"]["examples"]) == len(pos_at)


def test_class_and_area_filters(qtbot, panel, state):
    state.set_query(state.tile_ref(3))
    wait_results(qtbot, state, lambda: len(state.results.rows) == 20)
    assert panel.class_button.isVisibleTo(panel) and panel.bbox_edit.isVisibleTo(panel)
    assert not panel.scene_combo.isVisibleTo(panel), "no Sentinel-2 names: no scene filter"
    wanted = {"Forest", "River"}
    for act in panel.class_menu.actions():
        act.setChecked(act.text() in wanted)
    panel._filters_changed()
    wait_results(qtbot, state, lambda: state.results.filters is not None)
    assert {r.label for r in state.results.rows} <= wanted and len(state.results.rows) == 10
    assert "Forest" in panel.class_button.text()
    filtered = state.results
    state.set_query(state.tile_ref(7))  # a new query (a double-click in the archive) keeps them
    wait_results(qtbot, state, lambda: state.results is not filtered)
    assert {r.label for r in state.results.rows} <= wanted and state.results.filters is not None
    panel.bbox_edit.setText("10,20,5")
    panel._filters_changed()
    assert "Area filter" in panel.message.text() and "c62828" in panel.message.styleSheet()


def test_remove_and_clear_examples(qtbot, panel, state):
    a = state.archive
    drop_files(panel.drop, [a.root / a.records[i].path for i in (20, 21)])
    wait_results(qtbot, state, lambda: len(state.results.examples) == 2)
    panel.remove_example(state.session.positives[1])
    wait_results(qtbot, state, lambda: len(state.results.examples) <= 1)
    assert len(state.session.positives) == 1
    panel.clear_examples()
    assert state.results is None and not state.session.positives and panel.result_count() == 0
