"""The Search tab says when its index is out of date with the archive and updates it for the
changed tiles only; an export never overwrites a tile, an index or a model."""

from __future__ import annotations

import shutil

import pytest

from rsgui.app.panels.query import QueryPanel
from rsgui.index_store import HashIndex
from rsgui.progress import drive


@pytest.fixture
def stale_archive(tmp_path):
    from rsgui.archive import Archive
    from rsgui.demo import make_demo_archive
    from rsgui.services.indexing import spectral_index_job

    root = make_demo_archive(tmp_path / "arch", n_per_class=2, size=16)
    result = drive(spectral_index_job(Archive.open(root), 16))
    (root / "Forest" / "Forest_2.tif").unlink()
    shutil.copy(root / "River" / "River_1.tif", root / "River" / "River_7.tif")
    return root, result.path


def test_out_of_date_index_is_said_and_updated(qtbot, show, make_state, stale_archive):
    root, path = stale_archive
    state = make_state(root)
    panel = show(QueryPanel(state), (900, 700))
    assert panel.load_index(path)
    assert panel.update_button.isVisibleTo(panel)
    text = panel.message.text()
    assert "out of date" in text and "1 tile(s) removed" in text and "1 new" in text
    panel.update_button.click()
    qtbot.waitUntil(lambda: not state.tasks.active, timeout=60_000)
    updated = HashIndex.load(path)
    assert len(updated) == len(state.archive) == 20
    assert updated.position_of("Forest/Forest_2.tif") is None
    assert updated.position_of("River/River_7.tif") is not None
    assert not panel.update_button.isVisibleTo(panel)
    assert "out of date" not in panel.message.text()


def test_up_to_date_index_offers_no_update(show, make_state, stale_archive):
    root, path = stale_archive
    from rsgui.archive import Archive
    from rsgui.services.indexing import spectral_index_job

    fresh = drive(spectral_index_job(Archive.open(root), 16))
    state = make_state(root)
    panel = show(QueryPanel(state), (900, 700))
    assert panel.load_index(fresh.path)
    assert not panel.update_button.isVisibleTo(panel)


@pytest.mark.parametrize("target", ["tile", "index"])
def test_export_never_overwrites_a_tile_or_an_index(qtbot, show, make_state, stale_archive,
                                                    target):  # fmt: skip
    root, path = stale_archive
    state = make_state(root)
    panel = show(QueryPanel(state), (900, 700))
    assert panel.load_index(path)
    from rsgui.app.models import TileRef

    state.set_query(TileRef(root / "Forest" / "Forest_1.tif", 0))
    panel.search()
    qtbot.waitUntil(lambda: state.results is not None, timeout=30_000)
    victim = root / "SeaLake" / "SeaLake_1.tif" if target == "tile" else path
    before = victim.read_bytes()
    assert panel.export(victim) is None
    assert victim.read_bytes() == before
    assert str(victim) in panel.message.text()
