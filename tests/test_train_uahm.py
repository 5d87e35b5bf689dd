"""Training loop: progress, checkpoints, resume, cancel, refused model files, encoder, CLI."""

from __future__ import annotations

import argparse
import json
import pickle

import numpy as np
import pytest
import torch

from rsgui.encoders import load_trained_encoder
from rsgui.encoders.registry import METHODS
from rsgui.errors import ModelFileError
from rsgui.progress import drive
from rsgui.services.training import map_evaluator
from training.checkpoint import load_checkpoint
from training.ssm import build_ssm
from training.train_uahm import TrainSettings, generate_tiles, load_networks, train
from training.uahm import UAHMConfig

torch.set_num_threads(1)

N, SIZE, BITS = 16, 32, 8
BANDS10 = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


def data(channels=10, n=N, seed=0):
    rng = np.random.default_rng(seed)
    tiles = rng.random((n, channels, SIZE, SIZE), dtype=np.float32)
    tiles[n // 2 :] *= 0.3  # two groups
    return tiles, np.repeat([0, 1], [n // 2, n - n // 2])


def cfg(method="uahm", channels=10):
    return UAHMConfig(method=method, bits=BITS, channels=channels, image_size=SIZE, width=0.125,
                      hidden=32, **METHODS[method].config)  # fmt: skip


def train_to_end(*args, **kwargs):
    return drive(train(*args, **kwargs))


def settings(**kw):
    base = dict(steps=3, batch_size=8, checkpoint_every=0, log_every=1)
    return TrainSettings(**{**base, **kw})


def meta(channels=10):
    names = BANDS10 if channels == 10 else ["B04", "B03", "B02"]
    return {"band_names": names, "normalisation": {"clip": 4095.0, "divisor": 4095.0}}


def tiny_ssm(tiles):
    return build_ssm(tiles.reshape(len(tiles), -1), 4, 3)


@pytest.mark.parametrize("method", ["uahm", "dhnn-ms", "gan-rgb", "gan-ms"])
def test_every_method_trains_and_checkpoints(tmp_path, method):
    ch = 3 if method == "gan-rgb" else 10
    tiles, labels = data(ch)
    out = tmp_path / "m.safetensors"
    c = cfg(method, ch)
    steps = []
    path = drive(
        train(
            c,
            settings(eval_every=3),
            tiles,
            tiny_ssm(tiles),
            out=out,
            meta=meta(ch),
            eval_tiles=tiles,
            evaluate=map_evaluator(labels, 20, c.binary),
        ),  # fmt: skip
        steps.append,
    )
    assert path == out
    assert [p.done for p in steps] == [1, 2, 3] and steps[-1].done == steps[-1].total
    assert steps[-1].rate > 0 and steps[0].eta_s is not None and steps[0].stage == "train"
    assert 0 <= steps[-1].values["map"] <= 1
    assert all(np.isfinite(v) for p in steps for v in p.values.values())
    tensors, m = load_checkpoint(out, method)
    assert m["step"] == 3 and m["bits"] == BITS and m["band_names"] == meta(ch)["band_names"]
    assert m["model"]["method"] == method and len(m["history"]) == 3 and "map@20" in m["metrics"]
    assert any(k.startswith("optD.") for k in tensors)  # optimiser state stored
    enc = load_trained_encoder(out, method)
    codes = enc.encode(tiles[:5])
    assert codes.shape == (5, BITS) and codes.dtype == np.float32
    assert enc.kind == ("binary" if method in ("uahm", "dhnn-ms") else "float")
    assert json.dumps(enc.describe())  # JSON-able for the index


def test_resume_continues_exactly(tmp_path):
    tiles, _ = data()
    ssm = tiny_ssm(tiles)
    full = tmp_path / "full.safetensors"
    part = tmp_path / "part.safetensors"
    train_to_end(cfg(), settings(steps=4), tiles, ssm, out=full, meta=meta())
    train_to_end(cfg(), settings(steps=2), tiles, ssm, out=part, meta=meta())
    resumed = []
    drive(train(cfg(), settings(steps=4), tiles, ssm, out=part, meta=meta(), resume=part),
          resumed.append)  # fmt: skip
    assert [p.done for p in resumed] == [3, 4]
    a, ma = load_checkpoint(full)
    b, mb = load_checkpoint(part)
    assert mb["step"] == 4 and len(mb["history"]) == 4
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit for bit on CPU, optimiser state included


def test_cancel_writes_a_resumable_checkpoint(tmp_path):
    tiles, _ = data()
    ssm = tiny_ssm(tiles)
    out = tmp_path / "m.safetensors"
    s = settings(steps=10, checkpoint_every=2)
    job = train(cfg(), s, tiles, ssm, out=out, meta=meta())
    for _ in range(3):
        next(job)
    job.close()  # cancel after the 3rd step
    _, m = load_checkpoint(out)
    assert m["step"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]
    # resuming the cancelled run ends where the uninterrupted one does, bit for bit
    full = tmp_path / "full" / "m.safetensors"
    train_to_end(cfg(), settings(steps=5), tiles, ssm, out=full, meta=meta())
    train_to_end(cfg(), settings(steps=5), tiles, ssm, out=out, meta=meta(), resume=out)
    a, b = load_checkpoint(full)[0], load_checkpoint(out)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_refused_model_files(tmp_path):
    tiles, _ = data()
    out = tmp_path / "m.safetensors"
    train_to_end(cfg(), settings(steps=1), tiles, tiny_ssm(tiles), out=out, meta=meta())
    with pytest.raises(ModelFileError, match="m.safetensors"):
        load_trained_encoder(out, "gan-ms")  # another method
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a model")
    bad.with_suffix(".json").write_text(out.with_suffix(".json").read_text())
    with pytest.raises(ModelFileError, match="x.safetensors"):
        load_trained_encoder(bad)
    pkl = tmp_path / "p.safetensors"
    pkl.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    pkl.with_suffix(".json").write_text(out.with_suffix(".json").read_text())
    with pytest.raises(ModelFileError, match="p.safetensors"):
        load_trained_encoder(pkl)
    lonely = tmp_path / "lonely.safetensors"
    lonely.write_bytes(out.read_bytes())
    with pytest.raises(ModelFileError, match="lonely"):
        load_trained_encoder(lonely)
    # a model of the ten ms bands cannot encode an rgb archive
    enc = load_trained_encoder(out)
    with pytest.raises(ModelFileError, match="m.safetensors.*B05"):
        enc.check_bands(("B04", "B03", "B02"))
    with pytest.raises(ValueError, match="10 bands"):
        enc.encode(np.zeros((1, 3, SIZE, SIZE), np.float32))
    # resuming with other model settings is refused
    with pytest.raises(ModelFileError, match="model settings"):
        drive(train(UAHMConfig(bits=16, image_size=SIZE, width=0.125, hidden=32), settings(),
                    tiles, tiny_ssm(tiles), resume=out))  # fmt: skip


def test_hashing_needs_ssm_and_right_tiles():
    tiles, _ = data()
    with pytest.raises(ValueError, match="similarity"):
        drive(train(cfg(), settings(), tiles, None))
    with pytest.raises(ValueError, match="tiles"):
        drive(train(cfg(), settings(), tiles[:, :3], tiny_ssm(tiles)))


def test_generated_geotiffs_have_band_names(tmp_path):
    import rasterio

    from rsgui.services.generation import write_unconditional

    tiles, _ = data()
    out = tmp_path / "m.safetensors"
    train_to_end(cfg(), settings(steps=1), tiles, tiny_ssm(tiles), out=out, meta=meta())
    c, g, _, m = load_networks(out)
    gen = generate_tiles(g, 2, c.bits, seed=1)
    assert gen.shape == (2, 10, SIZE, SIZE) and gen.min() >= 0 and gen.max() <= 1
    paths = write_unconditional(out, 2, tmp_path / "gen", seed=1)
    with rasterio.open(paths[0]) as src:
        assert src.descriptions == tuple(BANDS10) and src.count == 10 and src.dtypes[0] == "uint16"


def cli_args(archive, out, **kw):
    base = dict(archive=str(archive), method="uahm", out=str(out), bits=8, bands=None, steps=2,
                preset="quick", device="cpu", resume=None, seed=0, batch_size=8, amp=False,
                augment=None, n_generated=None, checkpoint_every=None)  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def test_cli_train_then_index(tmp_path, demo_archive, light_uahm, capsys):
    from rsgui.archive import Archive
    from rsgui.cli.train_cmd import run
    from rsgui.services.indexing import build_index

    out = tmp_path / "u.safetensors"
    assert run(cli_args(demo_archive, out, n_generated=2, variant="thesis")) == 0
    assert out.with_suffix(".ssm.npz").is_file()  # cached similarity matrix
    assert len(list((tmp_path / "u_generated").glob("*.tif"))) == 2
    captured = capsys.readouterr()
    assert "MAP@20" in captured.err  # the summary; stdout lists the files written
    assert str(out) in captured.out.splitlines()
    archive = Archive.open(demo_archive)
    index = build_index(archive, load_trained_encoder(out, "uahm"))
    assert len(index) == len(archive) and index.meta.bits == 8
    # resume to more steps
    assert run(cli_args(demo_archive, out, steps=3, resume=str(out), variant="thesis")) == 0
    assert load_checkpoint(out)[1]["step"] == 3


@pytest.mark.parametrize(
    "method, bands, message",
    [
        ("gan-rgb", "ms10", "band sets rgb"),
        ("gan-ms", "rgb", "multispectral"),
        ("dhnn-ms", "rgb", "multi"),
    ],
)
def test_cli_refuses_band_contradictions(tmp_path, demo_archive, method, bands, message):
    from rsgui.cli import CliError
    from rsgui.cli.train_cmd import run

    # rsgui-cli prints a CliError as one line and exits 2
    with pytest.raises(CliError, match=message):
        run(cli_args(demo_archive, tmp_path / "m", method=method, bands=bands))


def test_uahm_trains_on_rgb_too(tmp_path, demo_archive, light_uahm):
    from rsgui.cli.train_cmd import run

    out = tmp_path / "rgb.safetensors"
    assert run(cli_args(demo_archive, out, bands="rgb", steps=1)) == 0
    assert load_checkpoint(out)[1]["band_names"] == ["B04", "B03", "B02"]


def test_partners_are_similar_tiles():
    from training.train_uahm import with_partners

    tiles, _ = data()
    ssm = tiny_ssm(tiles)
    anchors = torch.arange(N)
    idx = with_partners(anchors, ssm, torch.Generator().manual_seed(0))
    assert idx[:N].tolist() == list(range(N))
    rows = ssm.rows(np.arange(N))
    rows[np.arange(N), np.arange(N)] = False
    assert rows.any(axis=1).sum() >= 4  # the case below is exercised
    for a, p in zip(idx[:N].tolist(), idx[N:].tolist(), strict=True):
        assert (p != a and rows[a, p]) if rows[a].any() else p == a


def test_generated_tiles_leave_bn_running_stats_alone():
    from training.train_uahm import frozen_bn_stats
    from training.uahm import build

    _, d = build(cfg())
    bn = d.body[1]
    before = bn.running_mean.clone()
    with frozen_bn_stats(d):
        d(torch.rand(4, 10, SIZE, SIZE))
    assert torch.equal(bn.running_mean, before) and bn.momentum == 0.1
    d(torch.rand(4, 10, SIZE, SIZE))
    assert not torch.equal(bn.running_mean, before)


@pytest.mark.parametrize("name", ["cpu", "auto", "cuda", "cuda:3", "tpu"])
def test_pick_device(name):
    from training.device import pick_device

    if name in ("cpu", "auto") or torch.cuda.is_available() and name == "cuda":
        dev = pick_device(name)
        assert dev.type in ("cpu", "cuda")
        if name == "cpu":
            assert dev.type == "cpu"
    else:
        if name == "cuda:3" and torch.cuda.device_count() > 3:
            pytest.skip("machine has that device")
        with pytest.raises(ValueError, match=name):
            pick_device(name)


def test_encoder_follows_protocol(tmp_path):
    from rsgui.encoders import Encoder

    tiles, _ = data()
    out = tmp_path / "m.safetensors"
    train_to_end(cfg(), settings(steps=1), tiles, tiny_ssm(tiles), out=out, meta=meta())
    enc = load_trained_encoder(out)
    assert isinstance(enc, Encoder) and enc.method == "uahm" and enc.bits == BITS
    assert enc.band_names == tuple(BANDS10) and enc.normalisation.divisor == 4095.0
    # tiles of another size are resampled to the model's
    assert enc.encode(np.zeros((2, 10, 2 * SIZE, 2 * SIZE), np.float32)).shape == (2, BITS)
