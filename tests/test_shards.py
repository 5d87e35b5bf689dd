"""The sharded index folder: round trip, searches equal to the one-file index, mixed halves
refused, old .npz indexes converted with one command."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rsgui import mih, shards
from rsgui.errors import IndexFileError
from rsgui.index_store import HashIndex, IndexMeta
from rsgui.shards import ShardedIndex, open_index, write_index


def _index(n=700, bits=64, kind="binary", seed=0, ties=False) -> HashIndex:
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((n, bits))
    if ties:  # few distinct codes: every search is decided by the tie rule
        codes = codes[rng.integers(0, 4, n) % 4]
    paths = sorted(f"c{i % 5}/tile_{i:05d}.tif" for i in range(n))
    labels = [None if i % 11 == 0 else p.split("/")[0] for i, p in enumerate(paths)]
    meta = IndexMeta("spectral", ("B02", "B03", "B04"), bits, kind=kind)
    return HashIndex.from_codes(
        codes, paths, labels, meta, extra_arrays={"spectral_x": np.arange(4.0)}
    )


@pytest.mark.parametrize("kind", ["binary", "float"])
@pytest.mark.parametrize("shard_rows", [1, 64, 700, 10_000])
def test_round_trip_and_identical_search(tmp_path, kind, shard_rows):
    ref = _index(n=120 if shard_rows == 1 else 700, kind=kind, ties=kind == "binary")
    folder = write_index(tmp_path / "idx", ref, shard_rows=shard_rows)
    ix = ShardedIndex.open(folder)
    assert len(ix) == len(ref) and ix.meta.to_dict() == ref.meta.to_dict()
    assert list(ix.paths) == ref.paths and ix.labels[: len(ref)] == ref.labels
    assert ix.classes == ref.classes
    np.testing.assert_array_equal(ix.extra_arrays["spectral_x"], ref.extra_arrays["spectral_x"])
    rng = np.random.default_rng(1)
    q = rng.standard_normal((5, ref.meta.bits))
    for k in (1, 10, len(ref), len(ref) + 5):
        for exclude in (None, [0, 3, -1, len(ref) - 1, 5]):
            a, b = ref.search(q, k, exclude=exclude), ix.search(q, k, exclude=exclude)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
    back = ix.to_hash_index()
    data = "codes" if kind == "binary" else "features"
    np.testing.assert_array_equal(getattr(back, data), getattr(ref, data))


def test_positions_and_records_are_read_lazily(tmp_path):
    ref = _index(n=300)
    ix = ShardedIndex.open(write_index(tmp_path / "idx", ref, shard_rows=100))
    assert ix._groups == {}  # nothing read by opening
    for i in (0, 99, 100, 299):
        assert ix.position_of(ref.paths[i]) == i
        assert ix.record(i)["path"] == ref.paths[i]
    assert ix.position_of("not/there.tif") is None
    with pytest.raises(IndexError):
        ix.record(300)


@pytest.mark.skipif(not mih.available(), reason="numba is not installed")
@pytest.mark.parametrize("ties", [False, True])
def test_shards_with_hash_tables_search_exactly(tmp_path, ties):
    ref = _index(n=2000, ties=ties, seed=4)
    ix = ShardedIndex.open(write_index(tmp_path / "idx", ref, shard_rows=900, mih=True))
    assert all(s.tables is not None for s in ix.shards)
    for s in ix.shards:  # use them even where the calibration found the scan cheaper
        s.entry["mih"]["use"] = True
    q = np.random.default_rng(2).standard_normal((8, 64))
    for k in (1, 50, 2000):
        a, b = ref.search(q, k), ix.search(q, k)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def _two(tmp_path):
    a = write_index(tmp_path / "a", _index(seed=1), shard_rows=300)
    b = write_index(tmp_path / "b", _index(seed=2), shard_rows=300)
    return a, b, ShardedIndex.open(a).manifest["shards"], ShardedIndex.open(b).manifest["shards"]


@pytest.mark.parametrize("swap", ["records", "codes"])
def test_mixed_halves_are_refused(tmp_path, swap):
    a, b, sa, sb = _two(tmp_path)
    shutil.copyfile(b / sb[0][swap], a / sa[0][swap])
    with pytest.raises(IndexFileError, match="(another index|does not match)"):
        ShardedIndex.open(a)


@pytest.mark.parametrize("damage", ["no manifest", "foreign manifest", "missing shard"])
def test_damaged_folders_are_refused(tmp_path, damage):
    a, _, sa, _ = _two(tmp_path)
    if damage == "no manifest":
        (a / shards.MANIFEST).unlink()
        with pytest.raises(IndexFileError):
            ShardedIndex.open(a)
        return
    if damage == "foreign manifest":
        (a / shards.MANIFEST).write_text('{"format": "something"}')
    else:
        (a / sa[1]["codes"]).unlink()
    with pytest.raises(IndexFileError):
        ShardedIndex.open(a)


def test_rewriting_leaves_only_the_new_files(tmp_path):
    folder = write_index(tmp_path / "idx", _index(seed=1), shard_rows=200)
    (folder / "notes.txt").write_text("mine")
    first = {p.name for p in folder.iterdir()}
    write_index(folder, _index(seed=2), shard_rows=200)
    second = {p.name for p in folder.iterdir()}
    assert "notes.txt" in second and not (first & second) - {"notes.txt", shards.MANIFEST}
    np.testing.assert_array_equal(
        ShardedIndex.open(folder).to_hash_index().codes, _index(seed=2).codes
    )


def test_an_npz_index_converts_with_one_command(tmp_path, capsys):
    from rsgui.cli import main

    ref = _index()
    ref.save(tmp_path / "old")
    assert main(["index-convert", str(tmp_path / "old.npz"), str(tmp_path / "new")]) == 0
    assert "700 codes" in capsys.readouterr().out
    ix = open_index(tmp_path / "new")
    assert isinstance(ix, ShardedIndex) and isinstance(open_index(tmp_path / "old"), HashIndex)
    np.testing.assert_array_equal(ix.to_hash_index().codes, ref.codes)
    assert main(["index-convert", str(tmp_path / "old.npz"), str(tmp_path / "new")]) == 2


def test_cli_search_reads_both_kinds_alike(tmp_path, demo_archive, capsys):
    from rsgui.cli import main

    out = tmp_path / "idx"
    assert main(["index", str(demo_archive), "--method", "spectral", "--out", str(out)]) == 0
    assert main(["index-convert", str(out), str(tmp_path / "folder")]) == 0
    capsys.readouterr()
    query = str(next(demo_archive.glob("Forest/*.tif")))
    texts = []
    for index in (str(out), str(tmp_path / "folder")):
        assert main(["search", index, query, "--top", "7"]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] and texts[0].count("\n") == 8


def test_tile_stats_survive_conversion_and_tell_changes(tmp_path, demo_archive):
    from rsgui.archive import Archive
    from rsgui.progress import drive
    from rsgui.services.index_update import index_changes
    from rsgui.services.indexing import index_job

    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root, ignore=shutil.ignore_patterns(".rsgui*"))
    ref = drive(index_job(Archive.open(root), "spectral", tmp_path / "old")).index
    ix = ShardedIndex.open(shards.convert(tmp_path / "old", tmp_path / "new"))
    np.testing.assert_array_equal(ix.tile_stats, ref.tile_stats)
    assert not index_changes(ix, deep=True).stale
    sorted(root.glob("Forest/*.tif"))[0].unlink()
    assert index_changes(ix, deep=True).removed == ["Forest/Forest_1.tif"]


def test_evaluation_reads_an_index_folder_as_its_npz(tmp_path):
    from rsgui.progress import drive
    from rsgui.services.evaluation import evaluation_job

    ref = _index(n=200, ties=True)
    ref.save(tmp_path / "old")
    shards.convert(tmp_path / "old", tmp_path / "new", shard_rows=64)
    a, b = drive(evaluation_job([tmp_path / "old.npz", tmp_path / "new"], k=(20,), n=(10,)))
    assert a.evaluation.to_markdown() == b.evaluation.to_markdown()
