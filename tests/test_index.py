"""Index files: round trip, refusal of bad files, query checks and atomic saving."""

import json
import pickle

import numpy as np
import pytest

from rsgui.bands import BAND_SETS
from rsgui.errors import IndexFileError, IndexMismatchError
from rsgui.hamming import hamming_topk
from rsgui.index_store import HashIndex, IndexMeta, describe_bands, index_paths

MS10 = BAND_SETS["ms10"]
RGB = BAND_SETS["rgb"]


def make_index(kind="binary", bits=64, n=40, seed=0, extra=True):
    rng = np.random.default_rng(seed)
    codes = rng.uniform(-1, 1, (n, bits)).astype(np.float32)
    meta = IndexMeta(
        method="uahm" if kind == "binary" else "gan-ms",
        band_names=MS10,
        bits=bits,
        kind=kind,
        normalisation={"clip": 4095.0, "divisor": 4095.0},
        archive_root="/data/archive",
        encoder={"model": "m.safetensors", "steps": 3},
    )
    labels = [f"class{i % 3}" if i % 5 else None for i in range(n)]
    paths = [f"class{i % 3}/tile_{i}.tif" for i in range(n)]
    arrays = {"projection": rng.standard_normal((8, 4)).astype(np.float32)} if extra else None
    return HashIndex.from_codes(codes, paths, labels, meta, extra_arrays=arrays), codes


@pytest.mark.parametrize("kind,bits", [("binary", 64), ("binary", 100), ("float", 32)])
@pytest.mark.parametrize("suffix", ["", ".npz", ".json"])
def test_save_load_round_trip(tmp_path, kind, bits, suffix):
    index, codes = make_index(kind, bits)
    written = index.save(tmp_path / f"idx{suffix}")
    assert written == tmp_path / "idx.npz"
    assert (tmp_path / "idx.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx.json", "idx.npz"]  # no temp files
    loaded = HashIndex.load(tmp_path / "idx")
    assert loaded.meta == index.meta
    assert loaded.paths == index.paths and loaded.labels == index.labels
    assert len(loaded) == 40
    np.testing.assert_array_equal(
        loaded.extra_arrays["projection"], index.extra_arrays["projection"]
    )
    if kind == "binary":
        np.testing.assert_array_equal(loaded.codes, index.codes)
    else:
        np.testing.assert_array_equal(loaded.features, codes)
    a = index.search(codes[:5], 7)
    b = loaded.search(codes[:5], 7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0][:, 0].tolist() == [0, 1, 2, 3, 4]  # each code finds itself first


def test_binary_search_uses_signs_and_hamming(tmp_path):
    index, codes = make_index("binary", 64)
    idx, dist = index.search(codes[3], 40)
    ref_idx, ref_dist = hamming_topk(index.codes, index.codes[3:4], 40)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)
    # flipping the sign of 5 entries moves the code exactly 5 bits away from itself
    q = codes[3].copy()
    q[:5] *= -1
    idx, dist = index.search(q, 40)
    assert dist[0][idx[0] == 3].tolist() == [5]


def test_labels_helpers():
    index, _ = make_index()
    assert index.classes == ("class0", "class1", "class2")
    ids = index.label_ids()
    assert ids[0] == -1 and ids[1] == 1 and ids[3] == 0


def test_check_query_names_both_sides():
    index, _ = make_index()
    index.check_query("uahm", MS10)  # same method and bands: accepted
    with pytest.raises(IndexMismatchError) as err:
        index.check_query("spectral", RGB)
    msg = str(err.value)
    assert "'uahm'" in msg and "ms10 (B02..B12)" in msg
    assert "'spectral'" in msg and "rgb" in msg
    with pytest.raises(IndexMismatchError, match="rgb"):
        index.check_query("uahm", RGB)
    assert describe_bands(("B01", "B02")) == "B01, B02"


def test_query_bits_mismatch_is_refused():
    index, _ = make_index("binary", 64)
    with pytest.raises(IndexMismatchError, match="64-bit.*128"):
        index.search(np.ones((2, 128), np.float32), 3)


@pytest.mark.parametrize("given", ["idx", "idx.npz", "idx.json"])
def test_index_paths_accepts_any_suffix(tmp_path, given):
    assert index_paths(tmp_path / given) == (tmp_path / "idx.npz", tmp_path / "idx.json")


def saved(tmp_path):
    index, _ = make_index()
    index.save(tmp_path / "idx")
    return tmp_path / "idx.npz", tmp_path / "idx.json"


def test_refuses_missing_json(tmp_path):
    npz, js = saved(tmp_path)
    js.unlink()
    with pytest.raises(IndexFileError, match=r"idx\.json.*missing"):
        HashIndex.load(npz)


def test_refuses_missing_npz(tmp_path):
    npz, js = saved(tmp_path)
    npz.unlink()
    with pytest.raises(IndexFileError, match=r"idx\.npz.*missing"):
        HashIndex.load(js)


def test_refuses_truncated_npz(tmp_path):
    npz, _ = saved(tmp_path)
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexFileError, match=r"idx\.npz.*(damaged|truncated)"):
        HashIndex.load(npz)


def test_refuses_pickle_named_npz(tmp_path):
    npz, _ = saved(tmp_path)
    npz.write_bytes(pickle.dumps({"codes": [1, 2, 3]}))
    with pytest.raises(IndexFileError, match=r"idx\.npz.*not an index array file"):
        HashIndex.load(npz)


def test_refuses_object_arrays(tmp_path):
    npz, _ = saved(tmp_path)
    with np.load(npz) as z:
        arrays = dict(z)
    arrays["paths"] = np.array(["a"] * 40, dtype=object)
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(IndexFileError, match=r"idx\.npz.*Python objects"):
        HashIndex.load(npz)


def test_refuses_paths_codes_mismatch(tmp_path):
    npz, _ = saved(tmp_path)
    with np.load(npz) as z:
        arrays = dict(z)
    arrays["paths"] = arrays["paths"][:-1]
    arrays["labels"] = arrays["labels"][:-1]
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(IndexFileError, match=r"idx\.npz: 39 paths for 40 codes"):
        HashIndex.load(npz)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"format_version": 99}, "unknown index format version 99"),
        ({"format": "something-else"}, "not an index metadata file"),
        ({"count": 41}, "do not belong together"),
        ({"bits": 128}, "codes must be"),
    ],
)
def test_refuses_bad_metadata(tmp_path, change, message):
    _, js = saved(tmp_path)
    meta = json.loads(js.read_text())
    meta.update(change)
    js.write_text(json.dumps(meta))
    with pytest.raises(IndexFileError, match=message) as err:
        HashIndex.load(js)
    assert "idx." in str(err.value)


def test_refuses_json_garbage(tmp_path):
    _, js = saved(tmp_path)
    js.write_text("{not json")
    with pytest.raises(IndexFileError, match=r"idx\.json: not a readable"):
        HashIndex.load(js)


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    index, _ = make_index()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "idx")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_previous_index(tmp_path, monkeypatch):
    old, _ = make_index(seed=1)
    old.save(tmp_path / "idx")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    new, _ = make_index(seed=2)
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError):
        new.save(tmp_path / "idx")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_constructor_refuses_inconsistent_arrays(tmp_path):
    meta = IndexMeta("uahm", MS10, 64)
    with pytest.raises(ValueError, match="2 codes but 3 paths"):
        HashIndex(meta, ["a", "b", "c"], [None] * 3, codes=np.zeros((2, 8), np.uint8))
    with pytest.raises(ValueError, match="codes must be"):
        HashIndex.from_codes(np.zeros((2, 32)), ["a", "b"], None, meta)
    with pytest.raises(ValueError, match="Python objects"):
        HashIndex.from_codes(
            np.zeros((1, 64)), ["a"], None, meta, {"x": np.array([None], dtype=object)}
        ).save(tmp_path / "idx")
    assert list(tmp_path.iterdir()) == []
