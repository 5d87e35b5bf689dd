"""After opening an archive without an index, the Search tab offers to build one with the
strongest training-free method installed; one click builds it, loads it and the bar goes away."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
from PySide6.QtCore import Qt

from rsgui.app.panels import index_offer
from rsgui.app.panels.index_offer import IndexOfferBar, offer_hint, offered_method
from rsgui.app.panels.query import QueryPanel
from rsgui.encoders import registry


@pytest.fixture
def fresh(copy_archive, make_state):
    """A state with a private demo archive open that has no index yet."""
    return make_state(copy_archive("offer"), reference=False)


def test_offer_builds_and_loads_the_index(qtbot, show, fresh):
    panel = show(QueryPanel(fresh), (900, 700))
    bar = panel.index_offer
    assert isinstance(bar, IndexOfferBar) and bar.isVisible()
    method = offered_method()  # pretrained where its backbone is installed, else spectral
    assert bar.button.text() == f"Index this archive with {method}"
    assert "no index yet" in offer_hint(fresh)
    qtbot.mouseClick(bar.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: fresh.index is not None, timeout=60_000)
    qtbot.waitUntil(lambda: bar.task is None, timeout=10_000)
    assert fresh.index.meta.method == method and len(fresh.index) == len(fresh.archive)
    assert fresh.indexes and not bar.isVisible() and offer_hint(fresh) == ""
    # the first search works at once
    fresh.set_query(fresh.tile_ref(0))
    qtbot.waitUntil(lambda: fresh.results is not None, timeout=30_000)
    assert len(fresh.results.rows) > 0


def test_no_offer_when_the_archive_has_an_index(show, copy_archive, make_state):
    from rsgui.archive import Archive
    from rsgui.progress import drive
    from rsgui.services.indexing import spectral_index_job

    root = copy_archive("indexed")
    drive(spectral_index_job(Archive.open(root), 16))
    state = make_state(root, reference=False)
    panel = show(QueryPanel(state), (900, 700))
    assert state.indexes and not panel.index_offer.isVisible() and offer_hint(state) == ""


def test_not_now_hides_it_for_this_archive(qtbot, show, fresh):
    panel = show(QueryPanel(fresh), (900, 700))
    bar = panel.index_offer
    bar.later_button.click()
    assert not bar.isVisible()
    bar.refresh()
    assert not bar.isVisible()


def test_the_strongest_installed_method_is_offered(monkeypatch):
    assert registry.METHODS["pretrained"].trained is False
    fake = dataclasses.replace(registry.METHODS["spectral"], key="pretrained", label="Backbone")
    monkeypatch.setitem(registry.METHODS, "pretrained", fake)
    monkeypatch.setattr(registry, "installed", lambda key: False, raising=False)
    assert offered_method() == "spectral"  # registered but its weights are missing
    monkeypatch.setattr(registry, "installed", lambda key: key == "pretrained", raising=False)
    assert offered_method() == "pretrained"
    assert index_offer.PREFERENCE[0] == "pretrained"


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None, reason="backbone not installed"
)
def test_the_backbone_is_offered_when_installed():
    assert offered_method() == "pretrained"
