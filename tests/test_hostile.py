"""Hostile input: names that lead out of their folder, deletion and overwrite of user files, scans
that never end, halves of two writes, stale indexes, and the smaller cases of issue 12."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rsgui import demo
from rsgui.archive import Archive
from rsgui.cli import main
from rsgui.errors import IndexFileError, JobError, UnsafeNameError
from rsgui.index_store import HashIndex, IndexMeta
from rsgui.paths import inside, safe_name

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def small_demo(tmp_path):
    return demo.make_demo_archive(tmp_path / "arc", n_per_class=2, size=16)


def _index(archive_dir: Path, out: Path, *extra: str) -> int:
    return main(["index", str(archive_dir), "--method", "spectral", "--bits", "16",
                 "--out", str(out), *extra])  # fmt: skip


# ------------------------------------------------------------------ 2. names from files
@pytest.mark.parametrize(
    "name", ["../../ESCAPED", "/abs/path", "..", ".", "a/b", "a\\b", "x\x00y", "", " lead", "tail."]
)
def test_unsafe_names_are_refused(name):
    with pytest.raises(UnsafeNameError, match="refused"):
        safe_name(name, "class name", "model.json")


@pytest.mark.parametrize("name", ["Forest", "Annual Crop", "Wald_ü", "B8A"])
def test_plain_names_pass(name):
    assert safe_name(name) == name


@pytest.mark.parametrize("rel", ["../x.tif", "a/../../x.tif", "/etc/x.tif"])
def test_inside_refuses_paths_out(tmp_path, rel):
    with pytest.raises(UnsafeNameError):
        inside(tmp_path / "out", rel)


def test_inside_refuses_a_link_out(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafeNameError, match="link"):
        inside(tmp_path / "out", "link")


@pytest.mark.parametrize("cls", ["../../ESCAPED", "/abs/path", ".."])
def test_generated_tiles_never_leave_the_folder(tmp_path, cls):
    from rsgui.services.generation import save_tiles

    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    with pytest.raises(UnsafeNameError, match="class name"):
        save_tiles(np.zeros((1, 3, 8, 8), np.float32), out, cls, ["B04", "B03", "B02"],
                   {"divisor": 4095.0})  # fmt: skip
    assert _files(tmp_path) == set()
    assert not Path("/abs/path").exists()


def test_cli_generate_with_hostile_sidecar_writes_nothing(tmp_path, capsys):
    """A real conditional GAN whose sidecar was edited to list path-like class names."""
    import torch

    from rsgui.progress import drive
    from training.cgan import CGANConfig
    from training.train_cgan import GANData, TrainConfig, train_cgan

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    norm = {"clip": 4095.0, "divisor": 4095.0}
    data = GANData(rng.random((4, 3, 16, 16), dtype=np.float32), np.array([0, 1, 0, 1]),
                   ("A", "B"), ("B04", "B03", "B02"), norm)  # fmt: skip
    ckpt = drive(train_cgan(data, tmp_path / "m" / "gan.safetensors",
                            CGANConfig(kind="acgan", image_size=16, width=0.125),
                            TrainConfig(steps=1, batch_size=4)))  # fmt: skip
    side = Path(ckpt).with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["classes"] = ["../../ESCAPED", "/abs/path"]
    side.write_text(json.dumps(meta))
    out = tmp_path / "a" / "b" / "out"
    before = _files(tmp_path)
    assert main(["generate", "--model", str(ckpt), "--class", "all", "--n", "1",
                 "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "ESCAPED" in err and "refused" in err and str(ckpt) in err
    assert _files(tmp_path) == before and not (tmp_path / "ESCAPED").exists()


def test_index_with_paths_out_of_its_archive_is_refused(tmp_path):
    meta = IndexMeta("spectral", ("B02",), 8, archive_root=str(tmp_path / "arc"))
    idx = HashIndex.from_codes(np.ones((2, 8)), ["A/1.tif", "../../etc/passwd"], None, meta)
    idx.save(tmp_path / "i")
    with pytest.raises(IndexFileError, match="outside the archive"):
        HashIndex.load(tmp_path / "i")


# ------------------------------------------------------------------ 3. deletion and overwrite
def test_demo_archive_with_other_settings_keeps_user_files(tmp_path):
    root = demo.make_demo_archive(tmp_path / "arc", n_per_class=2, size=16)
    (root / "my_notes.txt").write_text("mine")
    (root / "Forest" / "my_tile.tif").write_bytes(b"mine")
    (root / "Mine").mkdir()
    (root / "Mine" / "data.csv").write_text("1,2")
    demo.make_demo_archive(root, n_per_class=1, size=16, seed=5)
    files = _files(root)
    assert {"my_notes.txt", "Forest/my_tile.tif", "Mine/data.csv"} <= files
    assert "Forest/Forest_1.tif" in files and "Forest/Forest_2.tif" not in files
    marker = json.loads((root / demo.MARKER).read_text())
    assert marker["n_per_class"] == 1 and "Forest/Forest_1.tif" in marker["files"]
    opened = Archive.open(root, use_cache=False)
    assert len(opened) == 10 and [p.path for p in opened.problems] == ["Forest/my_tile.tif"]
    assert (root / "my_notes.txt").read_text() == "mine"


def test_demo_never_overwrites_a_user_file_in_the_way(tmp_path):
    root = demo.make_demo_archive(tmp_path / "arc", n_per_class=1, size=16)
    (root / "Forest" / "Forest_2.tif").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="Forest_2.tif"):
        demo.make_demo_archive(root, n_per_class=2, size=16)
    assert (root / "Forest" / "Forest_2.tif").read_bytes() == b"mine"


def test_demo_marker_cannot_name_files_outside(tmp_path):
    root = demo.make_demo_archive(tmp_path / "arc", n_per_class=1, size=16)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    marker = json.loads((root / demo.MARKER).read_text())
    marker["files"] += ["../victim.txt", "/etc/hostname", "Forest/../../victim.txt"]
    (root / demo.MARKER).write_text(json.dumps(marker))
    demo.make_demo_archive(root, n_per_class=2, size=16)
    assert victim.read_text() == "keep"


def test_old_demo_marker_is_still_understood(tmp_path):
    """A version-1 marker lists no files: its files are the names its settings make."""
    root = demo.make_demo_archive(tmp_path / "arc", n_per_class=2, size=16)
    (root / demo.MARKER).write_text(json.dumps({"n_per_class": 2, "size": 16, "seed": 0,
                                                "version": 1}))  # fmt: skip
    (root / "mine.txt").write_text("x")
    demo.make_demo_archive(root, n_per_class=1, size=16)
    assert "mine.txt" in _files(root) and "Forest/Forest_2.tif" not in _files(root)


@pytest.mark.parametrize("target", ["index_npz", "index_json", "tile", "model", "other_tile"])
def test_search_out_never_overwrites_an_index_model_or_tile(tmp_path, small_demo, capsys, target):
    idx = tmp_path / "idx"
    assert _index(small_demo, idx) == 0
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    outside_tile = tmp_path / "copy.tif"
    shutil.copy(small_demo / "Forest" / "Forest_1.tif", outside_tile)
    path = {
        "index_npz": idx.with_suffix(".npz"),
        "index_json": idx.with_suffix(".json"),
        "tile": small_demo / "Forest" / "Forest_1.tif",
        "model": model,
        "other_tile": outside_tile,
    }[target]
    before = path.read_bytes()
    query = small_demo / "River" / "River_1.tif"
    capsys.readouterr()
    assert main(["search", str(idx), str(query), "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "error" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_evaluate_pr_csv_never_overwrites_the_index(tmp_path, small_demo, capsys):
    idx = tmp_path / "idx"
    assert _index(small_demo, idx) == 0
    before = idx.with_suffix(".npz").read_bytes()
    capsys.readouterr()
    assert main(["evaluate", str(idx), "--pr-csv", str(idx.with_suffix(".npz"))]) == 2
    assert idx.with_suffix(".npz").read_bytes() == before
    assert "index being read" in capsys.readouterr().err


def test_search_out_overwrites_a_previous_export(tmp_path, small_demo):
    idx = tmp_path / "idx"
    assert _index(small_demo, idx) == 0
    out = tmp_path / "res.csv"
    out.write_text("query,rank\nold,1\n")
    assert main(["search", str(idx), str(small_demo / "River" / "River_1.tif"), "--out",
                 str(out)]) == 0  # fmt: skip
    assert "old" not in out.read_text()


# ------------------------------------------------------------------ 4. scans that never end
def _run_with_timeout(fn, seconds=20.0):
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "the call hangs"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_fifo_named_tif_is_reported_not_opened(small_demo):
    os.mkfifo(small_demo / "Forest" / "pipe.tif")
    a = _run_with_timeout(lambda: Archive.open(small_demo, use_cache=False))
    assert len(a) == 20
    assert any(p.path == "Forest/pipe.tif" and "named pipe" in p.reason for p in a.problems)


def test_fifo_query_is_refused_not_waited_on(tmp_path, small_demo, capsys):
    idx = tmp_path / "idx"
    assert _index(small_demo, idx) == 0
    fifo = tmp_path / "q.tif"
    os.mkfifo(fifo)
    code = _run_with_timeout(lambda: main(["search", str(idx), str(fifo)]))
    assert code == 2 and "named pipe" in capsys.readouterr().err


def test_link_to_root_is_not_walked(small_demo, monkeypatch):
    (small_demo / "everything").symlink_to("/")
    walked = []
    real = os.scandir

    def counting(path):
        walked.append(path)
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    a = _run_with_timeout(lambda: Archive.open(small_demo, use_cache=False))
    assert len(a) == 20 and len(walked) <= 12
    assert any(p.path == "everything" and "outside the archive" in p.reason for p in a.problems)


def test_link_loop_lists_each_tile_once_and_keeps_labels(small_demo):
    (small_demo / "Forest" / "up").symlink_to("..")
    a = _run_with_timeout(lambda: Archive.open(small_demo, use_cache=False))
    assert len(a) == 20 and len({r.path for r in a.records}) == 20
    assert len(a.classes) == 10
    assert any(p.path == "Forest/up" and "loop" in p.reason for p in a.problems)


def test_link_to_a_folder_inside_is_followed_once(small_demo, write_tile):
    extra = small_demo.parent / "elsewhere"
    write_tile(small_demo / "Pasture" / "sub" / "x.tif", size=16)
    (small_demo / "Alias").symlink_to(small_demo / "Pasture")
    os.symlink(extra, small_demo / "Dangling")  # a broken link is no folder
    a = Archive.open(small_demo, use_cache=False)
    paths = [r.path for r in a.records]
    assert "Pasture/sub/x.tif" in paths and not any(p.startswith("Alias/") for p in paths)
    assert any(p.path == "Alias" for p in a.problems)


# ------------------------------------------------------------------ 5. two halves, one write
def test_index_halves_of_two_writes_are_refused(tmp_path):
    meta = IndexMeta("spectral", ("B02",), 8)
    a = HashIndex.from_codes(np.ones((3, 8)), list("abc"), None, meta)
    b = HashIndex.from_codes(-np.ones((3, 8)), list("abc"), None, meta)
    a.save(tmp_path / "one")
    b.save(tmp_path / "two")
    shutil.copy(tmp_path / "two.json", tmp_path / "one.json")  # same count: used to load
    with pytest.raises(IndexFileError, match="different writes") as e:
        HashIndex.load(tmp_path / "one")
    assert "one.npz" in str(e.value) and "one.json" in str(e.value)


def test_old_index_without_pair_id_still_loads(tmp_path, caplog):
    meta = IndexMeta("spectral", ("B02",), 8)
    HashIndex.from_codes(np.ones((3, 8)), list("abc"), None, meta).save(tmp_path / "old")
    with np.load(tmp_path / "old.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "pair_id"}
    np.savez(tmp_path / "old.npz", **arrays)
    side = json.loads((tmp_path / "old.json").read_text())
    del side["pair_id"]
    (tmp_path / "old.json").write_text(json.dumps(side))
    with caplog.at_level("WARNING"):
        assert len(HashIndex.load(tmp_path / "old")) == 3
    assert "older version" in caplog.text


def test_checkpoint_halves_of_two_writes_are_refused(tmp_path):
    import torch

    from rsgui.errors import ModelFileError
    from training.checkpoint import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "a.safetensors", {"w": torch.zeros(2)}, {"method": "x", "step": 1})
    save_checkpoint(tmp_path / "b.safetensors", {"w": torch.ones(2)}, {"method": "x", "step": 9})
    shutil.copy(tmp_path / "b.json", tmp_path / "a.json")
    with pytest.raises(ModelFileError, match="different writes") as e:
        load_checkpoint(tmp_path / "a.safetensors")
    assert "a.safetensors" in str(e.value) and "a.json" in str(e.value)


def test_old_checkpoint_without_pair_id_still_loads(tmp_path, caplog):
    import torch
    from safetensors.torch import save_file

    from training.checkpoint import FORMAT, load_checkpoint

    save_file({"w": torch.zeros(2)}, str(tmp_path / "o.safetensors"), metadata={"format": FORMAT})
    (tmp_path / "o.json").write_text(json.dumps({"format": FORMAT, "format_version": 1,
                                                 "method": "x"}))  # fmt: skip
    with caplog.at_level("WARNING"):
        tensors, meta = load_checkpoint(tmp_path / "o.safetensors")
    assert meta["method"] == "x" and "older version" in caplog.text


def test_second_writer_waits_for_the_first(tmp_path, monkeypatch):
    """The first writer is held between its two renames; the second must not slip in there, so
    the pair on disk is always one write's (the second, whole)."""
    meta_a = IndexMeta("spectral", ("B02",), 8, encoder={"writer": "a"})
    meta_b = IndexMeta("spectral", ("B02",), 8, encoder={"writer": "b"})
    a = HashIndex.from_codes(np.ones((3, 8)), list("abc"), None, meta_a)
    b = HashIndex.from_codes(-np.ones((3, 8)), list("abc"), None, meta_b)
    real_replace = os.replace
    in_pause = threading.Event()

    def slow_replace(src, dst):
        real_replace(src, dst)
        if threading.current_thread().name == "first" and str(dst).endswith(".npz"):
            in_pause.set()
            time.sleep(0.8)  # between the rename of the .npz and that of the .json

    monkeypatch.setattr(os, "replace", slow_replace)
    first = threading.Thread(target=a.save, args=(tmp_path / "i",), name="first")
    first.start()
    assert in_pause.wait(10)
    b.save(tmp_path / "i")
    first.join()
    got = HashIndex.load(tmp_path / "i")
    assert np.array_equal(got.codes, b.codes) and got.meta.encoder == {"writer": "b"}


class _Killed(BaseException):
    """Stands for SIGKILL inside the process: nothing after it runs."""


@pytest.mark.parametrize("kind", ["index", "checkpoint"])
def test_writer_dying_between_the_renames_leaves_old_or_new(tmp_path, monkeypatch, kind):
    """The process dies right after the first half is renamed: the next load gives the new
    pair whole (the pending second half is put in place), never the new half with the old."""
    import torch

    from training.checkpoint import load_checkpoint, save_checkpoint

    def write(n):
        if kind == "index":
            meta = IndexMeta("spectral", ("B02",), 8, encoder={"writer": n})
            HashIndex.from_codes(np.full((3, 8), n), list("abc"), None, meta).save(tmp_path / "i")
        else:
            save_checkpoint(tmp_path / "m.safetensors", {"w": torch.full((2,), float(n))},
                            {"method": "x", "step": n})  # fmt: skip

    def read():
        if kind == "index":
            got = HashIndex.load(tmp_path / "i")
            return int(got.codes[0, 0] != 0), got.meta.encoder["writer"]
        tensors, meta = load_checkpoint(tmp_path / "m.safetensors")
        return int(tensors["w"][0]), meta["step"]

    write(-1 if kind == "index" else 1)
    old = read()
    real_replace = os.replace
    second = tmp_path / ("i.json" if kind == "index" else "m.json")

    def dying_replace(src, dst):
        if Path(dst) == second:
            raise _Killed  # the first half is in place, the second not yet
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(_Killed):
        write(2 if kind == "checkpoint" else 1)
    monkeypatch.setattr(os, "replace", real_replace)
    new = read()
    assert new != old
    assert new == ((1, 1) if kind == "index" else (2, 2))


def test_a_busy_lock_fails_with_a_message(tmp_path):
    from rsgui.atomic import locked
    from rsgui.errors import FileBusyError

    with locked(tmp_path / "x.npz"):
        with pytest.raises(FileBusyError, match="another program is writing"):
            with locked(tmp_path / "x.npz", timeout=0.1):
                pass
    assert list(tmp_path.iterdir()) == []  # no lock file left behind


# ------------------------------------------------------------------ 6. stale indexes
@pytest.fixture
def indexed(tmp_path, small_demo):
    idx = tmp_path / "idx"
    assert _index(small_demo, idx) == 0
    return small_demo, idx


def _rewrite_same_size_and_time(path: Path, other: Path) -> None:
    st = path.stat()
    data = other.read_bytes()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_search_warns_about_removed_and_changed_tiles(indexed, capsys):
    arc, idx = indexed
    (arc / "Forest" / "Forest_2.tif").unlink()
    _rewrite_same_size_and_time(arc / "River" / "River_1.tif", arc / "SeaLake" / "SeaLake_1.tif")
    shutil.copy(arc / "Pasture" / "Pasture_1.tif", arc / "Pasture" / "Pasture_9.tif")
    capsys.readouterr()
    assert main(["search", str(idx), str(arc / "Forest" / "Forest_1.tif")]) == 0
    err = capsys.readouterr().err
    assert "1 tile(s) removed, 1 changed, 1 new" in err and "--update" in err
    assert main(["evaluate", str(idx)]) == 0
    assert "1 tile(s) removed, 1 changed, 1 new" in capsys.readouterr().err


def test_up_to_date_index_gives_no_warning(indexed, capsys):
    arc, idx = indexed
    capsys.readouterr()
    assert main(["search", str(idx), str(arc / "Forest" / "Forest_1.tif")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_cached_offsets_of_a_rewritten_tile_are_not_trusted(tmp_path, write_tile):
    """Same size and mtime, another layout (band-interleaved instead of pixel-interleaved): the
    cached offsets would read garbage."""
    root = tmp_path / "arc"
    value = np.arange(3 * 16 * 16, dtype=np.uint16).reshape(3, 16, 16)
    p = write_tile(root / "A" / "t.tif", value=value, size=16)
    write_tile(root / "A" / "u.tif", bands=3, size=16)
    other = write_tile(tmp_path / "other.tif", value=value, size=16, interleave="band")
    size = max(p.stat().st_size, other.stat().st_size)
    for f in (p, other):  # bytes after the image are ignored by every reader
        f.write_bytes(f.read_bytes().ljust(size, b"\0"))
    first = Archive.open(root)
    assert "raw" in first._kinds[first._record_kind[first.find("A/t.tif")]]  # the fast path
    assert np.array_equal(first.read_raw(first.find("A/t.tif")), value)
    _rewrite_same_size_and_time(p, other)
    again = Archive.open(root)
    assert again.cache_hit  # size and mtime alone say nothing changed
    assert np.array_equal(again.read_raw(again.find("A/t.tif")), value)


@pytest.mark.parametrize("method", ["spectral"])
def test_update_equals_a_full_rebuild(indexed, capsys, method):
    from rsgui.services.indexing import build_index
    from rsgui.services.search import encoder_for_index

    arc, idx = indexed
    before = HashIndex.load(idx)
    (arc / "Forest" / "Forest_2.tif").unlink()
    _rewrite_same_size_and_time(arc / "River" / "River_1.tif", arc / "SeaLake" / "SeaLake_1.tif")
    shutil.copy(arc / "Pasture" / "Pasture_1.tif", arc / "Pasture" / "Pasture_9.tif")
    capsys.readouterr()
    assert main(["index", str(arc), "--out", str(idx), "--update"]) == 0
    err = capsys.readouterr().err
    assert "2 tile(s) encoded (1 new, 1 changed), 1 removed, 18 kept" in err
    updated = HashIndex.load(idx)
    full = build_index(Archive.open(arc, use_cache=False), encoder_for_index(before))
    assert updated.paths == full.paths and updated.labels == full.labels
    assert np.array_equal(updated.codes, full.codes)
    assert updated.position_of("Forest/Forest_2.tif") is None
    river = updated.position_of("River/River_1.tif")
    assert not np.array_equal(
        updated.codes[river], before.codes[before.position_of("River/River_1.tif")]
    )
    capsys.readouterr()
    assert main(["search", str(idx), str(arc / "Forest" / "Forest_1.tif")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_update_encodes_nothing_when_nothing_changed(indexed, capsys, monkeypatch):
    arc, idx = indexed
    capsys.readouterr()
    assert main(["index", str(arc), "--out", str(idx), "--update"]) == 0
    assert "0 tile(s) encoded" in capsys.readouterr().err


# ------------------------------------------------------------------ 8. smaller ones
def test_non_utf8_file_name_in_an_export(tmp_path, small_demo, capsys):
    name = os.fsdecode(b"bad\xff.tif")
    shutil.copy(small_demo / "Forest" / "Forest_1.tif", small_demo / "Forest" / name)
    idx = tmp_path / "idx"
    assert _index(small_demo, idx) == 0
    out = tmp_path / "res.csv"
    q = small_demo / "Forest" / "Forest_2.tif"
    assert main(["search", str(idx), str(q), "--top", "30", "--out", str(out)]) == 0
    assert os.fsencode(str(small_demo / "Forest" / name)) in out.read_bytes()


def test_one_deep_tile_does_not_unlabel_the_archive(small_demo, write_tile):
    deep = small_demo / "Forest" / "/".join(f"d{i}" for i in range(60)) / "deep.tif"
    write_tile(deep, size=16)
    a = Archive.open(small_demo, use_cache=False)
    assert len(a.classes) == 10
    rec = a.records[a.find(deep.relative_to(small_demo).as_posix())]
    assert rec.label == "Forest"


def test_unreadable_after_caching_is_not_trusted_for_ever(tmp_path, small_demo, monkeypatch):
    """A tile cached as good, then unreadable without its mtime changing (chmod): the failing
    read drops it from the cache, so the next run reports it instead of failing again."""
    from rsgui import tiff_header as th
    from rsgui.errors import TileReadError

    Archive.open(small_demo)  # cached
    bad = str(small_demo / "Forest" / "Forest_1.tif")
    real = th.open_regular

    def guarded(path):
        if os.fspath(path) == bad:
            raise PermissionError(13, "Permission denied", bad)
        return real(path)

    monkeypatch.setattr(th, "open_regular", guarded)
    real_pixels = __import__("rsgui.archive", fromlist=["_read_pixels"])._read_pixels

    def guarded_pixels(path, *a, **k):
        if path == bad:
            raise TileReadError(path, "cannot read pixels (permission denied)")
        return real_pixels(path, *a, **k)

    monkeypatch.setattr("rsgui.archive._read_pixels", guarded_pixels)
    a = Archive.open(small_demo)
    assert a.cache_hit
    with pytest.raises(TileReadError):
        a.read(list(range(len(a))))
    b = Archive.open(small_demo)
    assert not b.cache_hit and any(p.path == "Forest/Forest_1.tif" for p in b.problems)


def test_index_has_no_cache_option(tmp_path, small_demo):
    assert _index(small_demo, tmp_path / "idx", "--no-cache") == 0


def test_resume_on_another_archive_is_refused(tmp_path, small_demo):
    from rsgui.services.training import train_job

    ckpt = tmp_path / "m.safetensors"
    ckpt.write_bytes(b"")
    ckpt.with_suffix(".json").write_text(json.dumps({"archive_root": str(tmp_path / "other")}))
    with pytest.raises(JobError, match="trained on archive") as e:
        next(train_job(small_demo, "uahm", tmp_path / "n.safetensors", resume=ckpt))
    assert str(tmp_path / "other") in str(e.value) and str(small_demo) in str(e.value)


def test_evaluate_says_what_a_large_run_costs_and_samples(tmp_path, monkeypatch, capsys):
    import rsgui.cli.index_cmds as ic

    rng = np.random.default_rng(0)
    meta = IndexMeta("spectral", ("B02",), 16)
    n = 400
    labels = [f"C{i % 4}" for i in range(n)]
    HashIndex.from_codes(rng.standard_normal((n, 16)), [f"C{i % 4}/{i}.tif" for i in range(n)],
                         labels, meta).save(tmp_path / "big")  # fmt: skip
    monkeypatch.setattr(ic, "EVAL_WARN_DISTANCES", 1000)
    assert main(["evaluate", str(tmp_path / "big")]) == 0
    cap = capsys.readouterr()
    assert "400 queries" in cap.err and "--sample" in cap.err
    assert main(["evaluate", str(tmp_path / "big"), "--sample", "50"]) == 0
    assert "50 queries against 399 tiles" in capsys.readouterr().out
