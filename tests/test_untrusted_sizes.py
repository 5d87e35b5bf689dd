"""Sizes read from files are checked before anything is allocated: model settings that claim a
network far bigger than its weights, ``.npz`` members claiming huge shapes, cached manifests
claiming huge tiles, oversized or deeply nested JSON. Every refusal is one line naming the file.
Tiny files made here."""

from __future__ import annotations

import json
import struct
import zipfile

import numpy as np
import pytest
import torch

from rsgui.archive import Archive
from rsgui.errors import IndexFileError, ModelFileError
from rsgui.index_store import HashIndex, IndexMeta
from rsgui.progress import drive

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- model settings


@pytest.fixture(scope="module")
def uahm_model(tmp_path_factory):
    from training.train_uahm import TrainSettings, train
    from training.uahm import UAHMConfig

    out = tmp_path_factory.mktemp("uahm") / "m.safetensors"
    tiles = np.random.default_rng(0).random((8, 3, 16, 16), dtype=np.float32)
    cfg = UAHMConfig(method="gan-rgb", bits=8, channels=3, image_size=16, width=0.125, hidden=16,
                     binary=False)  # fmt: skip
    meta = {"band_names": ["B04", "B03", "B02"], "normalisation": {"clip": 255, "divisor": 255}}
    return drive(train(cfg, TrainSettings(steps=1, batch_size=4), tiles, out=out, meta=meta))


@pytest.fixture(scope="module")
def deephash_model(tmp_path_factory):
    from training.checkpoint import save_checkpoint
    from training.common import add_prefix
    from training.deephash import DeepHashConfig, DeepHashNet

    cfg = DeepHashConfig(bits=8, bands="ms10", channels=10, cnn_width=4, hidden1=16, hidden2=8)
    net = DeepHashNet(cfg)
    meta = {"method": "deephash", "band_names": ["B02", "B03", "B04", "B05", "B06", "B07",
            "B08", "B8A", "B11", "B12"], "bits": 8, "config": cfg.to_dict(),
            "normalisation": {"clip": 4095.0, "divisor": 4095.0}, "features": None}  # fmt: skip
    out = tmp_path_factory.mktemp("dh") / "d.safetensors"
    return save_checkpoint(out, add_prefix(net.state_dict(), "net"), meta)


@pytest.fixture(scope="module")
def cgan_model(tmp_path_factory):
    from training.cgan import CGANConfig
    from training.checkpoint import save_checkpoint
    from training.common import add_prefix
    from training.train_cgan import build_models

    cfg = CGANConfig(image_size=16, width=0.125, n_classes=2)
    g, d = build_models(cfg)
    meta = {"method": "cdcgan", "band_names": ["B04", "B03", "B02"], "classes": ["A", "B"],
            "config": cfg.to_dict(), "normalisation": {"clip": 255, "divisor": 255}}  # fmt: skip
    out = tmp_path_factory.mktemp("cg") / "g.safetensors"
    return save_checkpoint(out, add_prefix(g.state_dict(), "G") | add_prefix(d.state_dict(), "D"),
                           meta)  # fmt: skip


def _copy_with(model, tmp_path, section, **changes):
    """A copy of a model file whose sidecar's ``section`` has ``changes``."""
    dst = tmp_path / model.name
    dst.write_bytes(model.read_bytes())
    meta = json.loads(model.with_suffix(".json").read_text())
    if section is None:
        meta.update(changes)
    else:
        meta[section] = {**(meta.get(section) or {}), **changes}
    dst.with_suffix(".json").write_text(json.dumps(meta))
    return dst


def _load_uahm(path):
    from rsgui.encoders import load_trained_encoder

    return load_trained_encoder(path)


def _load_deephash(path):
    from rsgui.encoders import load_trained_encoder

    return load_trained_encoder(path)


def _load_cgan(path):
    from training.train_cgan import load_generator

    return load_generator(path)


@pytest.mark.parametrize(
    "fixture, loader, section, changes, message",
    [
        ("uahm_model", _load_uahm, "model", {"width": 1000.0}, "settings and weights do not"),
        ("uahm_model", _load_uahm, "model", {"hidden": 1e7}, "settings and weights do not"),
        ("uahm_model", _load_uahm, "model", {"hidden": 1.5}, "hidden = 1.5 is not an integer"),
        ("uahm_model", _load_uahm, "model", {"bits": "64"}, "bits = '64' is not an integer"),
        ("uahm_model", _load_uahm, "model", {"leak": float("nan")}, "not a finite number"),
        ("uahm_model", _load_uahm, "model", {"image_size": 1 << 20}, "do not belong"),
        ("deephash_model", _load_deephash, "config", {"hidden1": 10_000_000}, "do not belong"),
        ("deephash_model", _load_deephash, "config", {"cnn_width": 1000}, "do not belong"),
        ("deephash_model", _load_deephash, None, {"features": {"input_size": 100_000}},
         "backbone input size 100000"),
        ("cgan_model", _load_cgan, "config", {"width": 1000.0}, "do not belong"),
        ("cgan_model", _load_cgan, "config", {"z_dim": 10**9}, "do not belong"),
        ("cgan_model", _load_cgan, None, {"pixel_scale": [float("nan"), 1.0, 1.0]},
         "pixel scale"),
        ("cgan_model", _load_cgan, None, {"classes": ["A", "B", "C"]}, "classes"),
    ],
)  # fmt: skip
def test_model_settings_beyond_the_weights_are_refused(
    request, tmp_path, fixture, loader, section, changes, message
):
    path = _copy_with(request.getfixturevalue(fixture), tmp_path, section, **changes)
    with pytest.raises(ModelFileError, match=message) as err:
        loader(path)
    text = str(err.value)
    assert str(tmp_path) in text and "\n" not in text


def test_sane_models_still_load(uahm_model, deephash_model, cgan_model):
    assert _load_uahm(uahm_model).bits == 8
    assert _load_deephash(deephash_model).bits == 8
    assert _load_cgan(cgan_model)[0] is not None


def test_oversized_sidecar_is_refused_unread(tmp_path, uahm_model, monkeypatch):
    import training.checkpoint as ck

    path = _copy_with(uahm_model, tmp_path, None, padding="x" * 5000)
    monkeypatch.setattr(ck, "SIDECAR_MAX_BYTES", 4096)
    from training.train_uahm import load_networks

    with pytest.raises(ModelFileError, match=r"m.json: .* too large"):
        load_networks(path)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"method": "uahm", "x": NaN'])
def test_unparsable_sidecar_is_one_clean_error(tmp_path, uahm_model, text):
    path = tmp_path / "m.safetensors"
    path.write_bytes(uahm_model.read_bytes())
    path.with_suffix(".json").write_text(text)
    with pytest.raises(ModelFileError, match="m.json"):
        _load_uahm(path)


# ----------------------------------------------------------------------------- .npz members


def _npz_with_member(path, name, shape, dtype="<u1", data=b"\0" * 16, compress=False):
    """A zip whose ``name.npy`` header claims ``shape`` while holding ``data`` only."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode()
    pad = 64 - (10 + len(header) + 1) % 64
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + pad + 1) + header
    npy += b" " * pad + b"\n" + data
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "a" if path.exists() else "w", mode) as z:
        z.writestr(name + ".npy", npy)


def _small_index(tmp_path):
    idx = HashIndex.from_codes(np.ones((3, 8), np.float32), ["a", "b", "c"], None,
                               IndexMeta("spectral", ("B04",), 8))  # fmt: skip
    return idx.save(tmp_path / "idx")


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("member", ["codes", "paths", "extra__spectral_rotation"])
def test_npz_member_claiming_a_huge_shape_is_refused(tmp_path, member, compress):
    path = _small_index(tmp_path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != member}
    np.savez(path, **arrays)
    _npz_with_member(path, member, (100_000_000_000, 8), compress=compress)
    with pytest.raises(IndexFileError, match=rf"idx.npz: member '{member}' claims a "
                                             r"100000000000x8"):  # fmt: skip
        HashIndex.load(path)


def test_npz_total_size_limit(tmp_path, monkeypatch):
    import rsgui.safeload as sl

    path = _small_index(tmp_path)
    monkeypatch.setattr(sl, "DEFAULT_MAX_BYTES", 10)
    monkeypatch.setattr(sl.load_npz, "__defaults__", (ValueError, 10, "array file"))
    with pytest.raises(IndexFileError, match="idx.npz: its arrays claim"):
        HashIndex.load(path)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"format": "rsgui-index", "bits": 1e999}'])
def test_unparsable_index_metadata_is_one_clean_error(tmp_path, text):
    path = _small_index(tmp_path)
    path.with_suffix(".json").write_text(text)
    with pytest.raises(IndexFileError, match="idx.json"):
        HashIndex.load(path)


def test_index_metadata_with_absurd_numbers_is_one_clean_error(tmp_path):
    path = _small_index(tmp_path)
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta.update(bits=1e999, count="many")
    side.write_text(json.dumps(meta))
    with pytest.raises(IndexFileError, match="idx.json: incomplete index metadata"):
        HashIndex.load(path)


# ----------------------------------------------------------------------------- manifests


def _cached_archive(tmp_path, write_tile):
    for cls in ("A", "B"):
        for i in range(2):
            write_tile(tmp_path / cls / f"{cls}{i}.tif", bands=3, size=16, crs=False)
    arc = Archive.open(tmp_path)
    assert arc.cache_path is not None
    return arc.cache_path


@pytest.mark.parametrize(
    "change",
    [
        {"height": 30000, "width": 30000},
        {"count": 100_000},
        {"dtype": "object"},
        {"raw": {"offset": -5, "byteorder": "<", "planar": 1}},
        {"height": 16.5},
    ],
)
def test_manifest_claiming_huge_tiles_is_not_trusted(tmp_path, write_tile, change):
    cache = _cached_archive(tmp_path, write_tile)
    meta = json.loads(cache.read_text())
    for kind in meta["kinds"]:
        if "problem" not in kind:
            kind.update(change)
    cache.write_text(json.dumps(meta))
    arc = Archive.open(tmp_path)
    assert not arc.cache_hit  # headers read again
    assert arc.tile_shape == (16, 16) and len(arc) == 4
    assert arc.read([0]).pixels.shape == (1, 3, 16, 16)


def test_manifest_npz_claiming_a_huge_member_is_not_trusted(tmp_path, write_tile):
    cache = _cached_archive(tmp_path, write_tile)
    npz = cache.with_suffix(".npz")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files if k != "geo"}
    np.savez(npz, **arrays)
    _npz_with_member(npz, "geo", (100_000_000_000, 16), dtype="<f8")
    arc = Archive.open(tmp_path)
    assert not arc.cache_hit and len(arc) == 4


def test_similarity_cache_claiming_a_huge_member_is_ignored(tmp_path):
    from rsgui.services.similarity import _cache_sizes_ok

    good = tmp_path / "good.ssm.npz"
    np.savez(good, packed=np.zeros((4, 1), np.uint8), n=np.array(4))
    assert _cache_sizes_ok(good)
    bad = tmp_path / "bad.ssm.npz"
    _npz_with_member(bad, "packed", (100_000_000_000, 8))
    assert not _cache_sizes_ok(bad)
    assert not _cache_sizes_ok(tmp_path / "missing.ssm.npz")
