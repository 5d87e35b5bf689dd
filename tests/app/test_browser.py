"""Archive browser: thumbnails appear lazily, the class filter and find box narrow the grid, a
selected tile shows its details, and the report lists skipped files."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap

from rsgui.app.panels.browser import BrowserPanel
from rsgui.archive import Archive
from rsgui.tiles import GeoRef, TileRecord


@pytest.fixture
def browser(show, state):
    return show(BrowserPanel(state), (900, 700))


def test_grid_lists_every_tile_and_renders_thumbnails_lazily(qtbot, browser, state):
    n = len(state.archive)
    assert browser.visible_count() == n
    assert browser.count_label.text() == f"{n} of {n} tiles"
    qtbot.waitUntil(
        lambda: isinstance(
            browser.model.data(browser.model.index(0), Qt.ItemDataRole.DecorationRole), QPixmap
        ),
        timeout=10_000,
    )
    assert 0 < browser.cache.rendered_count <= n


@pytest.mark.parametrize("cls", ["Forest", "SeaLake"])
def test_class_filter(qtbot, browser, state, cls):
    i = browser.class_combo.findData(cls)
    assert i > 0, "each class is offered with its count"
    assert browser.class_combo.itemText(i) == f"{cls} ({state.archive.class_counts()[cls]})"
    browser.class_combo.setCurrentIndex(i)
    assert browser.visible_count() == state.archive.class_counts()[cls]
    labels = {state.archive.records[it.archive_index].label for it in browser.model.items}
    assert labels == {cls}


def test_find_box_filters_by_file_name_as_the_user_types(qtbot, browser, state):
    qtbot.keyClicks(browser.find_edit, "forest_1")
    expected = sum("forest_1" in r.path.rsplit("/", 1)[-1].lower() for r in state.archive.records)
    qtbot.waitUntil(lambda: browser.visible_count() == expected, timeout=3000)
    assert expected >= 1 and browser.count_label.text().startswith(f"{expected} of")
    browser.find_edit.clear()
    qtbot.waitUntil(lambda: browser.visible_count() == len(state.archive), timeout=3000)


def test_selecting_a_tile_shows_details_and_selects_it_for_the_viewer(qtbot, browser, state):
    seen = []
    state.tileSelected.connect(seen.append)
    browser.select_row(3)
    rec = state.archive.records[browser.model.items[3].archive_index]
    text = browser.details_text()
    assert rec.path in text and rec.label in text
    assert "64 × 64 pixels, 13 bands" in text
    assert "EPSG:" in text and "Centre" in text and "° N" in text
    for band in ("B01", "B8A", "B12"):
        assert band in text
    raw = state.archive.read_raw(rec.index)
    b8a = state.archive.band_names.index("B8A")
    assert f"{raw[b8a].mean():.1f}" in text, "per-band statistics use the band's own values"
    assert seen and seen[-1].archive_index == rec.index


def test_double_click_makes_the_tile_the_query(qtbot, browser, state):
    idx = browser.model.index(2)
    browser._use_as_query(idx)
    assert (
        state.query is not None
        and state.query.archive_index == browser.model.items[2].archive_index
    )


def test_report_lists_skipped_files(make_state, show, tmp_path, write_tile):
    root = tmp_path / "arch"
    for k in range(3):
        write_tile(root / "Forest" / f"Forest_{k}.tif")
    (root / "Forest" / "broken.tif").write_text("not a raster")
    panel = show(BrowserPanel(make_state(root)))
    assert panel.visible_count() == 3
    report = panel.report.toPlainText()
    assert "broken.tif" in report and "skipped" in report
    assert "1 skipped" in panel.side.tabText(1)


class _BigArchive:
    """27,000 records over a handful of real files: what matters is what the grid asks for."""

    def __init__(self, real):
        self.root = real.root
        self.band_names = real.band_names
        self.problems = []
        self.classes = real.classes
        self._real = real
        n = 27_000
        self.records = [
            TileRecord(
                i,
                real.records[i % len(real)].path.replace(".tif", f"_{i}.tif"),
                real.records[i % len(real)].label,
                64,
                64,
                13,
                GeoRef(),
            )
            for i in range(n)
        ]
        self.reads = 0

    def __len__(self):
        return len(self.records)

    def class_counts(self):
        return {c: sum(r.label == c for r in self.records) for c in self.classes}

    def report(self):
        return "big"

    def read_raw(self, i):
        self.reads += 1
        return self._real.read_raw(i % len(self._real))

    def find(self, path):
        return None


def test_grid_is_virtualised_at_27000_tiles(qtbot, make_state, show, demo_archive):
    big = _BigArchive(Archive.open(demo_archive))
    s = make_state()
    s.archive = big  # no index scan for a fake archive
    panel = show(BrowserPanel(s), (800, 600))
    panel._archive_changed()
    assert panel.visible_count() == 27_000
    qtbot.waitUntil(lambda: panel.cache.rendered_count > 0, timeout=10_000)
    qtbot.wait(300)
    assert big.reads < 300, f"only the visible rows are rendered, not {big.reads}"
    panel.view.scrollToBottom()
    # the view itself asks for the rows now on screen; the cache fills without our help
    last = panel.model.items[-1].key  # the last tile in natural order
    qtbot.waitUntil(lambda: panel.cache.get(last) is not None, timeout=10_000)
    assert big.reads < 800
