"""NaN, infinity and nodata: masked when read, left out of features, fits and training; mostly
empty and all-zero tiles reported and left out; diverged training and non-finite model or index
files refused. Tiny archives made here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from rsgui.archive import Archive, read_tile_file
from rsgui.errors import IndexFileError, ModelFileError, TrainingDiverged
from rsgui.index_store import HashIndex
from rsgui.progress import drive
from rsgui.services.indexing import index_job

torch.set_num_threads(1)

SIZE = 32


def _tile(rng, level: float, bands: int = 4) -> np.ndarray:
    return (level + rng.uniform(-0.1, 0.1, (bands, SIZE, SIZE)) * level).astype(np.float32)


def _archive(tmp_path, write_tile, dtype="float32", extra=None, nodata=None, per_class=4):
    """Forest (bright), SeaLake (dark) and Field (middle) tiles; ``extra``: {relative path:
    array} tiles added to it."""
    rng = np.random.default_rng(0)
    kw = {} if nodata is None else {"nodata": nodata}
    for cls, level in (("Forest", 1000.0), ("SeaLake", 30.0), ("Field", 400.0)):
        for i in range(per_class):
            write_tile(tmp_path / cls / f"{cls}_{i}.tif", value=_tile(rng, level), dtype=dtype,
                       crs=False, **kw)  # fmt: skip
    for rel, arr in (extra or {}).items():
        write_tile(tmp_path / rel, value=arr, dtype=dtype, crs=False, **kw)
    return Archive.open(tmp_path, preset="geotiff", use_cache=False)


def _labels_of_codes(arc):
    index = drive(index_job(arc, "spectral", bands="all", bits=16)).index
    return index


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_nan_border_is_masked_and_filled(tmp_path, write_tile, bad):
    rng = np.random.default_rng(1)
    t = _tile(rng, 1000.0)
    t[:, :8] = float(bad)  # an 8-row border: a quarter of the tile
    arc = _archive(tmp_path, write_tile, extra={"Forest/border.tif": t})
    i = arc.find("Forest/border.tif")
    batch = arc.read([i, 0])
    assert np.isfinite(batch.pixels).all()
    assert batch.valid is not None and not batch.valid[0, :8].any() and batch.valid[0, 8:].all()
    assert batch.valid_fraction == pytest.approx([0.75, 1.0])
    # filled with the tile's band means of its valid pixels
    means = t[:, 8:].reshape(4, -1).mean(axis=1) / 4095.0
    assert batch.pixels[0, :, 0, 0] == pytest.approx(means, rel=1e-4)


def test_clean_batches_carry_no_mask(tmp_path, write_tile):
    arc = _archive(tmp_path, write_tile, dtype="uint16")
    assert arc.read(range(len(arc))).valid is None


def test_nodata_value_of_the_file_is_masked(tmp_path, write_tile):
    rng = np.random.default_rng(2)
    t = _tile(rng, 1000.0)
    t[:, :12] = 0  # 37.5 % nodata
    arc = _archive(tmp_path, write_tile, dtype="uint16", nodata=0, extra={"Forest/edge.tif": t})
    batch = arc.read([arc.find("Forest/edge.tif")])
    assert batch.valid is not None
    assert batch.valid_fraction[0] == pytest.approx(1 - 12 / SIZE)


def test_query_tile_is_masked_too(tmp_path, write_tile):
    t = _tile(np.random.default_rng(3), 1000.0)
    t[:, :, :4] = np.nan
    path = write_tile(tmp_path / "q.tif", value=t, dtype="float32", crs=False)
    batch = read_tile_file(path, band_names="B02,B03,B04,B08")
    assert np.isfinite(batch.pixels).all()
    assert batch.valid_fraction[0] == pytest.approx(1 - 4 / SIZE)


# ----------------------------------------------------------------------------- left out


@pytest.mark.parametrize(
    "fill, rows, nodata, reason",
    [
        ("nan", 20, None, "63 % of its pixels are nodata, NaN or infinite"),
        ("nan", SIZE, None, "every pixel is nodata, NaN or infinite"),
        ("inf", 24, None, "75 % of its pixels"),
        (-9999, 17, -9999, "54 % of its pixels"),
        ("zero", SIZE, None, "every pixel is 0 in every band"),
    ],
)
def test_mostly_empty_tiles_are_reported_and_left_out(tmp_path, write_tile, fill, rows, nodata,
                                                      reason):  # fmt: skip
    t = _tile(np.random.default_rng(4), 1000.0)
    t[:, :rows] = 0.0 if fill == "zero" else float(fill)
    arc = _archive(tmp_path, write_tile, nodata=nodata, extra={"Forest/empty.tif": t})
    assert arc.find("Forest/empty.tif") is None
    assert len(arc) == 12
    (problem,) = [p for p in arc.problems if p.path == "Forest/empty.tif"]
    assert reason in problem.reason
    assert "Forest/empty.tif" in arc.report()


def test_half_empty_limit(tmp_path, write_tile):
    t = _tile(np.random.default_rng(5), 1000.0)
    t[:, :16] = np.nan  # exactly half: kept, masked
    arc = _archive(tmp_path, write_tile, extra={"Forest/half.tif": t})
    assert arc.find("Forest/half.tif") is not None


def test_screening_is_cached_with_the_header(tmp_path, write_tile):
    t = _tile(np.random.default_rng(6), 1000.0)
    t[:] = np.nan
    _archive(tmp_path, write_tile, extra={"Forest/nan.tif": t})
    warm = Archive.open(tmp_path, preset="geotiff")
    again = Archive.open(tmp_path, preset="geotiff")
    assert again.cache_hit
    for arc in (warm, again):
        assert any(p.path == "Forest/nan.tif" and "NaN" in p.reason for p in arc.problems)


# ----------------------------------------------------------------------------- features


def test_nan_tile_does_not_poison_the_spectral_index(tmp_path, write_tile):
    """Before: the per-band stretch became NaN and every code was the same."""
    t = _tile(np.random.default_rng(7), 1000.0)
    t[:, :8] = np.nan
    arc = _archive(tmp_path, write_tile, extra={"Forest/border.tif": t})
    result = drive(index_job(arc, "spectral", bands="all", bits=16))
    low = result.index.extra_arrays["spectral_band_low"]
    assert np.isfinite(low).all()
    codes = result.index.codes
    assert len({c.tobytes() for c in codes}) > 1
    # tiles of a class share codes more than tiles of different classes
    labels = np.array(result.index.labels)
    same = [np.unpackbits(codes[i] ^ codes[j]).sum() for i in range(len(codes))
            for j in range(len(codes)) if i != j and labels[i] == labels[j]]  # fmt: skip
    other = [np.unpackbits(codes[i] ^ codes[j]).sum() for i in range(len(codes))
             for j in range(len(codes)) if labels[i] != labels[j]]  # fmt: skip
    assert np.mean(same) < np.mean(other)


def test_nodata_border_matches_its_class_not_the_dark_one(tmp_path, write_tile):
    """Before: nodata 0 counted as dark pixels, so a bordered Forest tile's code sat halfway
    to the water tiles (Hamming 11-12 from Forest, 17 from SeaLake; Forest tiles 1-2 apart)."""
    rng = np.random.default_rng(0)
    for cls, lo, hi in (("Forest", 200, 1500), ("SeaLake", 20, 60), ("Field", 600, 900)):
        for i in range(5):
            write_tile(tmp_path / cls / f"{cls}{i}.tif", value=rng.uniform(lo, hi, (4, SIZE, SIZE)),
                       crs=False, nodata=0)  # fmt: skip
    t = rng.uniform(200, 1500, (4, SIZE, SIZE))
    t[:, :15] = 0  # 47 % nodata
    write_tile(tmp_path / "Forest" / "edge.tif", value=t, crs=False, nodata=0)
    arc = Archive.open(tmp_path, preset="geotiff", use_cache=False)
    index = drive(index_job(arc, "spectral", bands="all", bits=32)).index
    labels = np.array(index.labels)
    codes = index.codes
    dist = np.array([[np.unpackbits(a ^ b).sum() for b in codes] for a in codes])
    i = index.position_of("Forest/edge.tif")
    forest = np.flatnonzero((labels == "Forest") & (np.arange(len(labels)) != i))
    spread = dist[np.ix_(forest, forest)].max()  # how far apart clean Forest tiles are
    assert dist[i, forest].max() <= spread + 2
    assert dist[i, forest].max() < dist[i, labels == "SeaLake"].min()


@pytest.mark.parametrize("kind", ["global", "local"])
def test_masked_histograms_count_valid_pixels_only(kind):
    from rsgui.features import extract

    rng = np.random.default_rng(9)
    px = rng.uniform(0.4, 0.6, (2, 3, 32, 32)).astype(np.float32)
    valid = np.ones((2, 32, 32), bool)
    valid[1, :8] = False
    px[1, :, :8] = 0.0  # what the masked pixels hold does not matter
    f = extract(px, kind, bins=8, patch=16, valid=valid)
    g = extract(px[:, :, 8:], kind, bins=8, patch=16) if kind == "global" else None
    if kind == "global":
        assert f[1] == pytest.approx(g[1], abs=1e-6)
    assert f[1].reshape(3, -1, 8).sum(-1) == pytest.approx(1.0)
    assert (f[1] >= 0).all() and np.isfinite(f).all()


# ----------------------------------------------------------------------------- training

TINY_DH = {"hidden1": 16, "hidden2": 8, "cnn_width": 4, "dropout": 0.0}


def _nan_after(fn, n_ok):
    """``fn`` whose result becomes NaN from call ``n_ok + 1`` on."""
    calls = {"n": 0}

    def wrapped(*a, **kw):
        calls["n"] += 1
        out = fn(*a, **kw)
        if calls["n"] <= n_ok:
            return out
        if isinstance(out, tuple):  # (loss, parts)
            loss, parts = out
            return loss * float("nan"), {k: float("nan") for k in parts}
        return out * float("nan")

    return wrapped


def _all_finite(path) -> bool:
    from safetensors.torch import load_file

    return all(bool(torch.isfinite(t).all()) for t in load_file(str(path)).values()
               if t.is_floating_point())  # fmt: skip


def _run_deephash(tmp_path, monkeypatch):
    import training.train_deephash as td

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(2), 8)
    x = (rng.normal(0, 1, (16, 12)) + labels[:, None] * 3).astype(np.float32)
    data = td.DeepHashData(x, labels, np.zeros(16, bool), ("A", "B"), ("B04", "B03", "B02"),
                           {"clip": 4095.0, "divisor": 4095.0}, "rgb",
                           {"input_size": 75, "rgb_gain": 1.0})  # fmt: skip
    monkeypatch.setattr(td, "balance_loss", _nan_after(td.balance_loss, 2))
    cfg = td.DeepHashTrainConfig(steps=6, batch_pos=4, batch_neg=2, model=TINY_DH,
                                 checkpoint_every=2)  # fmt: skip
    out = tmp_path / "m.safetensors"
    return out, lambda: drive(td.train_deephash(data, out, 8, cfg))


def _run_uahm(tmp_path, monkeypatch):
    import training.train_uahm as tu
    from training.ssm import build_ssm
    from training.uahm import UAHMConfig

    rng = np.random.default_rng(0)
    tiles = rng.random((12, 3, 16, 16), dtype=np.float32)
    ssm = build_ssm(tiles.reshape(12, -1), 3, 2)
    monkeypatch.setattr(tu, "discriminator_loss", _nan_after(tu.discriminator_loss, 2))
    cfg = UAHMConfig(bits=8, channels=3, image_size=16, width=0.125, hidden=16)
    s = tu.TrainSettings(steps=6, batch_size=6, checkpoint_every=2, log_every=1)
    meta = {"band_names": ["B04", "B03", "B02"], "normalisation": {"clip": 255, "divisor": 255}}
    out = tmp_path / "m.safetensors"
    return out, lambda: drive(tu.train(cfg, s, tiles, ssm, out=out, meta=meta))


def _run_cgan(tmp_path, monkeypatch):
    import training.train_cgan as tc
    from training.cgan import CGANConfig

    rng = np.random.default_rng(0)
    data = tc.GANData(rng.random((8, 3, 16, 16), dtype=np.float32), np.arange(8) % 2,
                      ("A", "B"), ("B04", "B03", "B02"), {"clip": 255, "divisor": 255})  # fmt: skip
    monkeypatch.setattr(tc, "d_loss", _nan_after(tc.d_loss, 2))
    out = tmp_path / "m.safetensors"
    model = CGANConfig(image_size=16, width=0.125)
    cfg = tc.TrainConfig(steps=6, batch_size=4, checkpoint_every=2)
    return out, lambda: drive(tc.train_cgan(data, out, model, cfg))


@pytest.mark.parametrize("trainer", [_run_deephash, _run_uahm, _run_cgan])
def test_non_finite_loss_stops_without_saving_it(tmp_path, monkeypatch, trainer):
    out, run = trainer(tmp_path, monkeypatch)
    with pytest.raises(TrainingDiverged, match=r"step 3 .*keeps its checkpoint of step 2"):
        run()
    assert _all_finite(out)  # the good checkpoint of step 2, never overwritten with NaN


def test_nan_training_tiles_are_refused(tmp_path):
    import training.train_uahm as tu
    from rsgui.errors import JobError
    from training.uahm import UAHMConfig

    tiles = np.random.default_rng(0).random((6, 3, 16, 16), dtype=np.float32)
    tiles[2, 0, 0, 0] = np.nan
    cfg = UAHMConfig(method="gan-rgb", bits=8, channels=3, image_size=16, width=0.125, hidden=16,
                     binary=False)  # fmt: skip
    with pytest.raises(JobError, match="NaN or infinite"):
        drive(tu.train(cfg, tu.TrainSettings(steps=2, batch_size=4), tiles, out=tmp_path / "m"))


def test_save_refuses_non_finite_tensors(tmp_path):
    from training.checkpoint import save_checkpoint

    with pytest.raises(TrainingDiverged, match="D.w holds NaN"):
        save_checkpoint(tmp_path / "m.safetensors", {"D.w": torch.tensor([1.0, np.nan])},
                        {"method": "uahm"})  # fmt: skip
    assert not (tmp_path / "m.safetensors").exists()


# ----------------------------------------------------------------------------- loading


def test_model_with_nan_weights_is_refused(tmp_path):
    out = tmp_path / "m.safetensors"
    from rsgui.encoders import load_trained_encoder
    from training.train_uahm import TrainSettings, train
    from training.uahm import UAHMConfig

    tiles = np.random.default_rng(0).random((8, 3, 16, 16), dtype=np.float32)
    cfg = UAHMConfig(method="gan-rgb", bits=8, channels=3, image_size=16, width=0.125, hidden=16,
                     binary=False)  # fmt: skip
    meta = {"band_names": ["B04", "B03", "B02"], "normalisation": {"clip": 255, "divisor": 255}}
    path = drive(train(cfg, TrainSettings(steps=1, batch_size=4), tiles, out=out, meta=meta))
    assert load_trained_encoder(path).bits == 8
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        file_meta = f.metadata()  # keeps whatever ties the file to its sidecar
    tensors = load_file(str(path))
    key = next(k for k, v in tensors.items() if k.startswith("D.") and v.is_floating_point())
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("inf")
    save_file(tensors, str(path), metadata=file_meta)
    with pytest.raises(ModelFileError, match=rf"{path.name}: tensor {key} holds NaN or infinite"):
        load_trained_encoder(path)


def test_model_with_nan_normalisation_is_refused(tmp_path):
    import json

    from training.checkpoint import load_checkpoint, save_checkpoint

    p = save_checkpoint(tmp_path / "m.safetensors", {"D.w": torch.ones(2)},
                        {"method": "uahm", "normalisation": {"clip": 1.0, "divisor": 1.0}})  # fmt: skip
    side = p.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["normalisation"]["divisor"] = float("nan")
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=r"m.json: normalisation .* not usable"):
        load_checkpoint(p)


def _spectral_index(tmp_path, write_tile):
    arc = _archive(tmp_path / "arc", write_tile, dtype="uint16", per_class=3)
    return drive(index_job(arc, "spectral", tmp_path / "idx", bands="all", bits=8)).path


@pytest.mark.parametrize("member", ["extra__spectral_band_low", "extra__spectral_rotation"])
def test_index_with_non_finite_arrays_is_refused(tmp_path, write_tile, member):
    path = _spectral_index(tmp_path, write_tile)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[member] = arrays[member].astype(np.float32)
    arrays[member].flat[0] = np.nan
    np.savez(path, **arrays)
    name = member.removeprefix("extra__")
    with pytest.raises(IndexFileError, match=rf"idx.npz: array '{name}' holds NaN"):
        HashIndex.load(path)


def test_index_with_nan_normalisation_is_refused(tmp_path, write_tile):
    import json

    path = _spectral_index(tmp_path, write_tile)
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["normalisation"]["clip"] = float("inf")
    side.write_text(json.dumps(meta))
    with pytest.raises(IndexFileError, match="idx.json: .*normalisation"):
        HashIndex.load(path)


def test_float_index_with_nan_features_is_refused(tmp_path):
    from rsgui.index_store import IndexMeta

    feats = np.ones((3, 4), np.float32)
    idx = HashIndex.from_codes(feats, ["a", "b", "c"], None, IndexMeta("gan-rgb", ("B04",), 4,
                                                                       kind="float"))  # fmt: skip
    path = idx.save(tmp_path / "f")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["features"][1, 2] = np.inf
    np.savez(path, **arrays)
    with pytest.raises(IndexFileError, match="f.npz: array 'features' holds NaN"):
        HashIndex.load(path)


def test_band_statistics_skip_non_finite_values():
    from rsgui.app.render import band_statistics

    raw = np.array([[[1.0, np.nan], [3.0, np.inf]], [[np.nan, np.nan], [np.nan, np.nan]]])
    first, second = band_statistics(raw, ("B02", "B03"))
    assert (first["min"], first["mean"], first["max"]) == (1.0, 2.0, 3.0)
    assert np.isnan(second["mean"])


@pytest.mark.parametrize("driver, ext, dtype", [("JPEG", "jpg", "uint8"), ("PNG", "png", "uint8"),
                                                ("GTiff", "tif", "uint16")])  # fmt: skip
def test_screened_caches_still_hit(tmp_path, write_tile, driver, ext, dtype):
    """The stricter cache check (header kinds within the tile limits) accepts what the scan
    writes, for every reader path."""
    for i in range(3):
        write_tile(
            tmp_path / "A" / f"t{i}.{ext}",
            bands=3,
            size=16,
            dtype=dtype,
            driver=driver,
            crs=False,
            **({"compress": "deflate"} if i == 2 and driver == "GTiff" else {}),
        )
    first = Archive.open(tmp_path)
    again = Archive.open(tmp_path)
    assert len(first) == 3 and again.cache_hit and len(again) == 3
