"""The query panel's cluster field: a spectral index built on a Dask cluster lands as an index
folder where the archive's indexes are found, is loaded and searched like an .npz index."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("dask.distributed")

from rsgui.app.panels.query import QueryPanel  # noqa: E402


@pytest.fixture
def client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                           dashboard_address=":0", silence_logs=40)  # fmt: skip
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_build_on_a_cluster_from_the_panel(qtbot, make_state, show, demo_archive, tmp_path,
                                           client, monkeypatch):  # fmt: skip
    from rsgui.services import distributed
    from rsgui.shards import ShardedIndex

    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root, ignore=shutil.ignore_patterns(".rsgui*"))
    asked = []
    monkeypatch.setattr(
        distributed, "connect", lambda *a, **k: (asked.append(a), (client, None))[1]
    )
    state = make_state(root)
    panel = show(QueryPanel(state), (900, 700))
    panel.cluster_edit.setText("tcp://scheduler:8786")
    panel.cluster_edit.editingFinished.emit()
    assert state.scheduler == "tcp://scheduler:8786"
    panel.build_button.click()
    qtbot.waitUntil(lambda: not state.tasks.active, timeout=60_000)
    assert asked and asked[0][0] == "tcp://scheduler:8786"
    assert isinstance(state.index, ShardedIndex) and len(state.index) == 60
    assert state.index_path.name.endswith(".shards")
    assert any(e.path == state.index_path for e in state.indexes)
    state.set_query(state.tile_ref(3))
    qtbot.waitUntil(lambda: panel.result_count() == 20, timeout=10_000)
