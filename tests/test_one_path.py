"""One path from files to results: the application's index build and ``rsgui-cli index`` give
byte-identical codes and identical rankings for the same archive, method and settings.

The application side is driven through the very functions its panels start in a worker (the
query panel's "build index", the training panel's "index with this model", the query panel's
search); the command line through :func:`rsgui.cli.main`.
"""

from __future__ import annotations

import csv
import io
import shutil

import numpy as np
import pytest

from rsgui.archive import Archive
from rsgui.cli import main
from rsgui.index_store import HashIndex
from rsgui.progress import drive
from rsgui.ranking import rank_hamming
from rsgui.services.indexing import index_job, spectral_index_job
from rsgui.services.search import search


def _cli_index(tmp_path, archive_root, *extra) -> HashIndex:
    out = tmp_path / "cli-index"
    assert main(["index", str(archive_root), *extra, "--out", str(out)]) == 0
    return HashIndex.load(out)


def _cli_search(capsys, index_path, query, k) -> list[dict]:
    capsys.readouterr()
    assert main(["search", str(index_path), str(query), "--top", str(k)]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def _same_index(gui: HashIndex, cli: HashIndex) -> None:
    assert gui.meta.method == cli.meta.method and gui.meta.bits == cli.meta.bits
    assert gui.meta.band_names == cli.meta.band_names
    assert gui.paths == cli.paths and gui.labels == cli.labels
    assert gui.codes.tobytes() == cli.codes.tobytes()  # byte-identical codes
    assert gui.extra_arrays.keys() == cli.extra_arrays.keys()
    for name, arr in gui.extra_arrays.items():
        assert arr.tobytes() == cli.extra_arrays[name].tobytes(), name
    # identical leave-one-out rankings (what evaluation and the panel's precision rest on)
    q = np.arange(len(gui))
    np.testing.assert_array_equal(
        rank_hamming(gui.packed(), gui.codes, None, q),
        rank_hamming(cli.packed(), cli.codes, None, q),
    )


def _same_search(capsys, archive, gui: HashIndex, cli_path, k=7) -> None:
    """The panel's search of an archive tile and ``rsgui-cli search`` list the same tiles."""
    for i in (0, len(archive) // 2, len(archive) - 1):
        q = archive.path_of(i)
        panel = search(gui, q, k, archive=archive).rows
        cli = _cli_search(capsys, cli_path, q, k)
        assert [r.path for r in panel] == [r["path"] for r in cli]
        assert [str(r.distance) for r in panel] == [r["distance"] for r in cli]
        assert str(q) not in {r.path for r in panel}, "the query tile is left out by both"


def test_spectral_gui_and_cli_build_the_same_index(demo_archive, tmp_path, capsys):
    root = tmp_path / "archive"  # a copy: the GUI saves into the archive's own index folder
    shutil.copytree(demo_archive, root)
    archive = Archive.open(root)
    built = drive(spectral_index_job(archive, 32))  # the query panel's "build index"
    cli = _cli_index(tmp_path, root, "--method", "spectral", "--bits", "32")
    gui = HashIndex.load(built.path)
    assert built.path.name == "spectral-ms10-32.npz"
    _same_index(gui, cli)
    _same_search(capsys, archive, gui, tmp_path / "cli-index")


def test_trained_gui_and_cli_build_the_same_index(demo_archive, tmp_path, capsys, light_uahm):
    pytest.importorskip("torch")
    model = tmp_path / "u.safetensors"
    args = ["train", str(demo_archive), "--method", "uahm", "--bits", "8", "--steps", "2",
            "--batch-size", "8", "--device", "cpu", "--out", str(model)]  # fmt: skip
    assert main(args) == 0
    archive = Archive.open(demo_archive)
    # the training panel's "index with this model"
    built = drive(index_job(archive, "uahm", tmp_path / "gui-index", model=model))
    cli = _cli_index(tmp_path, demo_archive, "--method", "uahm", "--model", str(model))
    gui = HashIndex.load(built.path)
    assert gui.meta.encoder["model_path"] == cli.meta.encoder["model_path"] == str(model.resolve())
    _same_index(gui, cli)
    _same_search(capsys, archive, gui, tmp_path / "cli-index")
