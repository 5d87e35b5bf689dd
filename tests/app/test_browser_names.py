"""Tile names in the browser: natural order (_1, _2, ..., _10) and the class prefix shortened
first, so the number that tells tiles apart stays readable."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QFontMetrics

from rsgui.app.models import elide_name, natural_key
from rsgui.app.panels.browser import BrowserPanel, class_prefix
from rsgui.app.thumbnails import TileDelegate


def test_natural_key_orders_numbers_by_value():
    names = ["A_10.jpg", "A_2.jpg", "A_1.jpg", "A_100.jpg", "a_11.jpg", "B_1.jpg", "A_1000.jpg"]
    assert sorted(names, key=natural_key) == [
        "A_1.jpg", "A_2.jpg", "A_10.jpg", "a_11.jpg", "A_100.jpg", "A_1000.jpg", "B_1.jpg",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (30, "AnnualCrop_1033.jpg"),
        (16, "Annual…_1033.jpg"),
        (11, "A…_1033.jpg"),
        (10, "…_1033.jpg"),
        (7, "…33.jpg"),
    ],
)
def test_elide_the_class_prefix_first(width, expected):
    got = elide_name("AnnualCrop_1033.jpg", "AnnualCrop", lambda t: len(t) <= width)
    assert got == expected


def test_without_prefix_the_end_stays():
    assert elide_name("S2A_tile_000123.tif", "", lambda t: len(t) <= 8) == "…123.tif"


@pytest.mark.parametrize(
    ("name", "label", "prefix"),
    [("AnnualCrop_1033.jpg", "AnnualCrop", "AnnualCrop"), ("Forest-7.tif", "Forest", "Forest"),
     ("tile_3.tif", "Forest", ""), ("River_1.tif", None, "")],
)  # fmt: skip
def test_class_prefix(name, label, prefix):
    assert class_prefix(name, label) == prefix


@pytest.fixture
def named_archive(tmp_path, write_tile):
    for i in (1, 2, 3, 10, 11, 100, 1033):
        write_tile(tmp_path / "AnnualCrop" / f"AnnualCrop_{i}.tif", bands=13, size=8)
    for i in (1, 2, 10):
        write_tile(tmp_path / "Forest" / f"Forest_{i}.tif", bands=13, size=8)
    return tmp_path


def test_browser_sorts_naturally_and_keeps_numbers(qtbot, make_state, show, named_archive):
    state = make_state(named_archive, reference=False)
    panel = show(BrowserPanel(state), (900, 600))
    titles = [it.title for it in panel.model.items]
    assert titles[:7] == [f"AnnualCrop_{i}.tif" for i in (1, 2, 3, 10, 11, 100, 1033)]
    assert titles[7:] == ["Forest_1.tif", "Forest_2.tif", "Forest_10.tif"]
    assert [it.elide_prefix for it in panel.model.items[:2]] == ["AnnualCrop"] * 2

    # what the grid's cell draws for the longest name: the number is there in full
    delegate = panel.view.itemDelegate()
    assert isinstance(delegate, TileDelegate)
    fm = QFontMetrics(panel.view.font())
    room = delegate.cell_width - 6
    drawn = elide_name(
        "AnnualCrop_1033.tif", "AnnualCrop", lambda t: fm.horizontalAdvance(t) <= room
    )
    assert drawn.endswith("_1033.tif") and fm.horizontalAdvance(drawn) <= room
