"""Evaluation panel driven as a user would: tick indexes, set k and N, evaluate, read the views."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from rsgui.progress import drive


@pytest.fixture(scope="module")
def archive_with_indexes(copy_archive):
    """A copy of the demo archive with two spectral indexes (16 and 32 bits) in its index folder."""
    from rsgui.archive import Archive
    from rsgui.index_store import writable_index_dir
    from rsgui.services.indexing import index_job

    root = copy_archive("eval")
    folder = writable_index_dir(root)
    archive = Archive.open(root)
    for bits in (16, 32):
        drive(index_job(archive, "spectral", folder / f"spectral-{bits}", bits=bits))
    return root


@pytest.fixture
def panel(make_state, show, archive_with_indexes):
    from rsgui.app.panels.evaluation import EvaluationPanel

    w = show(EvaluationPanel(make_state(archive_with_indexes, reference=False)))
    yield w
    w.shutdown()


def tick(panel, stems: set[str]) -> None:
    for i in range(panel.index_list.count()):
        item = panel.index_list.item(i)
        on = item.text() in stems
        item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)


def type_into(qtbot, edit, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


def test_the_archive_indexes_are_listed_and_ticked(panel):
    assert sorted(panel.index_list.item(i).text() for i in range(panel.index_list.count())) == [
        "spectral-16",
        "spectral-32",
    ]
    assert len(panel.checked_paths()) == 2 and panel.run_btn.isEnabled()


@pytest.mark.parametrize("stems", [{"spectral-16"}, {"spectral-16", "spectral-32"}])
def test_pr_curves_table_and_bars_match_the_evaluation(qtbot, panel, stems):
    from rsgui.index_store import HashIndex
    from rsgui.services.evaluation import evaluate

    tick(panel, stems)
    type_into(qtbot, panel.k_edit, "5, 30")
    type_into(qtbot, panel.n_edit, "10")
    qtbot.mouseClick(panel.run_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(60)
    assert not panel.error.isVisibleTo(panel), panel.error.text()

    assert len(panel.pr_curves()) == len(stems)
    legend = panel.legend_labels()
    assert len(legend) == len(stems) and all(any(s in t for t in legend) for s in stems)
    assert panel.table_model.rowCount() == len(stems)
    for row, r in enumerate(panel.results):
        direct = evaluate(HashIndex.load(r.path), k=(5, 30), n=(10,))
        assert panel.table_value(row, "Index") == r.path.stem
        assert panel.table_value(row, "MAP@5") == f"{direct.map_retrieved[5]:.4f}"
        assert panel.table_value(row, "MAP@30") == f"{direct.map_retrieved[30]:.4f}"
        assert panel.table_value(row, "P@10") == f"{direct.precision[10]:.4f}"
        x, y = panel.pr_curves()[row].getData()
        np.testing.assert_allclose(y, direct.pr_precision)
        np.testing.assert_allclose(x, direct.pr_recall)
    assert len(panel.bars) == len(stems)
    ticks = [label for _pos, label in panel.class_plot.getAxis("left")._tickLevels[0]]
    assert ticks == list(panel.state.archive.classes)
    widths = panel.bars[0].opts["width"]
    expected = panel.results[0].evaluation.classwise[5]
    np.testing.assert_allclose(widths, [expected[c] for c in ticks])


def test_class_bars_follow_the_chosen_k(qtbot, panel):
    type_into(qtbot, panel.k_edit, "5, 30")
    qtbot.mouseClick(panel.run_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(60)
    panel.class_k.setCurrentIndex(panel.class_k.findData(30))
    expected = panel.results[0].evaluation.classwise[30]
    np.testing.assert_allclose(
        panel.bars[0].opts["width"], [expected[c] for c in panel.class_names]
    )
    assert "MAP@30" in panel.class_plot.getPlotItem().titleLabel.text


@pytest.mark.parametrize(("field", "text"), [("k_edit", "abc"), ("n_edit", "0"), ("k_edit", "")])
def test_bad_k_or_n_is_explained(qtbot, panel, field, text):
    type_into(qtbot, getattr(panel, field), text)
    qtbot.mouseClick(panel.run_btn, Qt.MouseButton.LeftButton)
    assert panel.task is None and panel.error.isVisibleTo(panel)
    assert "MAP@k" in panel.error.text() or "P@N" in panel.error.text()


def test_a_bad_index_file_is_named_in_the_panel(qtbot, panel, tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"nothing")
    panel.add_index(bad)
    tick(panel, {"broken"})
    qtbot.mouseClick(panel.run_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(60)
    assert panel.error.isVisibleTo(panel) and "broken" in panel.error.text()
    assert panel.run_btn.isEnabled()


def test_nothing_ticked_means_nothing_to_run(panel):
    tick(panel, set())
    assert not panel.run_btn.isEnabled()


def test_report_is_saved_per_index(qtbot, panel, tmp_path):
    tick(panel, {"spectral-32"})
    qtbot.mouseClick(panel.run_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(60)
    written = panel.save_report(tmp_path)
    assert sorted(p.name for p in written) == ["spectral-32.evaluation.md", "spectral-32.pr.csv"]
    assert "MAP@20" in (tmp_path / "spectral-32.evaluation.md").read_text()
