"""The improved deep hashing: the backbone fine-tuned on tiles towards per-class hash centres."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import held_out

from rsgui.errors import ModelFileError
from rsgui.progress import drive
from training.backbone import installed
from training.deephash import DeepHashConfig
from training.deephash_improved import (
    BackboneHashNet,
    centre_loss,
    hash_centres,
    quantisation_loss,
)
from training.train_deephash import (
    DeepHashData,
    hash_outputs,
    load_net,
    lr_factor,
    preset_config,
    train_deephash,
)

pytestmark = pytest.mark.skipif(
    not installed("efficientnet-lite0"), reason="EfficientNet-Lite0 is not installed"
)
torch.set_num_threads(1)

RGB = ("B04", "B03", "B02")
MS10 = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
NORM = {"clip": 1.0, "divisor": 1.0}


@pytest.mark.parametrize("n_classes,bits", [(10, 16), (10, 32), (10, 64), (4, 8), (10, 24)])
def test_hash_centres_far_apart(n_classes, bits):
    c = hash_centres(n_classes, bits, seed=3)
    assert c.shape == (n_classes, bits) and set(np.unique(c)) <= {-1.0, 1.0}
    d = (c[:, None] != c[None]).sum(-1)[~np.eye(n_classes, dtype=bool)]
    if bits & (bits - 1) == 0:  # Hadamard rows: exactly half the bits apart, or all of them
        assert d.min() == bits // 2
    else:
        assert d.min() >= bits // 4


def test_losses_worked_examples():
    centre = torch.tensor([[1.0, -1.0]])
    assert centre_loss(torch.tensor([[0.999999, -0.999999]]), centre).item() < 1e-5
    # outputs at 0: probability 0.5 for each bit, BCE = ln 2
    assert centre_loss(torch.zeros(1, 2), centre).item() == pytest.approx(np.log(2), rel=1e-5)
    assert quantisation_loss(torch.tensor([[1.0, -1.0]])).item() == 0
    assert quantisation_loss(torch.tensor([[0.0, 0.5]])).item() == pytest.approx(0.625)


def test_lr_warms_up_then_decays():
    f = [lr_factor(s, 100, 0.1) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False)) and f[-1] < 0.01


def _cfg(channels: int, bits: int = 16, **kw) -> DeepHashConfig:
    rgb = [2, 1, 0] if channels == 10 else [0, 1, 2]
    return DeepHashConfig(
        bits=bits, variant="improved", channels=channels, rgb_index=rgb, input_size=32, **kw
    )


@pytest.mark.parametrize("channels,side", [(3, 16), (10, 16), (10, 33)])
def test_network_shapes(channels, side):
    net = BackboneHashNet(_cfg(channels)).eval()
    out = net(torch.rand(5, channels, side, side))
    assert out.shape == (5, 16) and 0 < out.min() and out.max() < 1


@pytest.mark.parametrize(
    "bad",
    [{"rgb_index": [0, 1, 9]}, {"rgb_index": [0, 1]}, {"input_size": 100_000}, {"bits": 2}],
)
def test_network_refuses_settings_that_cannot_be(bad):
    with pytest.raises(ValueError):
        BackboneHashNet(DeepHashConfig.from_dict({**_cfg(3).to_dict(), **bad}))


def _tiles(bands: tuple[str, ...], n_per: int = 12, side: int = 16, seed: int = 0) -> DeepHashData:
    """Four classes told apart by their stripes alone: every tile has its own random colour,
    which an untrained network ranks by (measured top-5 precision on unseen tiles: 0.42-0.45
    untrained, 0.79-0.84 after 60 steps; chance is 0.2)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), n_per)
    colours = rng.uniform(0.1, 0.9, (len(labels), len(bands)))
    yy, xx = np.mgrid[:side, :side]
    stripes = [np.sin(xx), np.sin(yy), np.sin(xx + yy), np.zeros((side, side))]
    x = np.stack([colours[i][:, None, None] + 0.3 * stripes[c] for i, c in enumerate(labels)])
    x = (x + rng.normal(0, 0.05, x.shape)).clip(0, 1).astype(np.float32)
    return DeepHashData(
        x, labels, np.zeros(len(labels), bool), ("A", "B", "C", "D"), bands, NORM,
        "rgb" if len(bands) == 3 else "ms10", None,
    )  # fmt: skip


def _train_cfg(steps: int):
    cfg = preset_config("quick", "improved")
    cfg.steps, cfg.batch, cfg.checkpoint_every = steps, 16, 0
    cfg.model = {**cfg.model, "input_size": 32}
    return cfg


@pytest.mark.parametrize("bands", [RGB, MS10])
def test_training_ranks_far_better_than_chance(tmp_path, bands):
    data = _tiles(bands)
    path = drive(train_deephash(data, tmp_path / "h.safetensors", 16, _train_cfg(60)))
    net, meta = load_net(path)
    assert meta["config"]["variant"] == "improved" and meta["band_names"] == list(bands)
    test = _tiles(bands, n_per=6, seed=1)  # tiles the network never saw
    codes = hash_outputs(net, test.inputs) > 0.5
    ham = (codes[:, None] != codes[None]).sum(-1) + 99 * np.eye(len(codes), dtype=int)
    nearest = np.argsort(ham, axis=1, kind="stable")[:, :5]
    p5 = (test.labels[nearest] == test.labels[:, None]).mean()
    assert p5 > 0.65  # an untrained network: 0.45 at most


def test_cancel_resume_and_refusals(tmp_path):
    data = _tiles(RGB, n_per=4)
    out = tmp_path / "h.safetensors"
    job = train_deephash(data, out, 16, _train_cfg(4))
    next(job), next(job)
    job.close()
    assert json.loads(out.with_suffix(".json").read_text())["step"] == 2
    drive(train_deephash(data, out, 16, _train_cfg(4), resume=out))
    assert json.loads(out.with_suffix(".json").read_text())["step"] == 4
    thesis = preset_config("quick", "thesis")
    with pytest.raises(ValueError, match="improved"):
        next(train_deephash(data, out, 16, thesis, resume=out))
    with pytest.raises(ValueError, match="tiles"):  # features are not tiles
        flat = DeepHashData(
            **{**data.__dict__, "inputs": data.inputs.reshape(len(data.labels), -1)}
        )
        next(train_deephash(flat, out, 16, _train_cfg(1)))
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize(
    "change", [{"rgb_index": [0, 1, 50]}, {"input_size": 10**6}, {"channels": 10**5}]
)
def test_hostile_settings_refused_on_load(tmp_path, change):
    out = drive(train_deephash(_tiles(RGB, n_per=2), tmp_path / "h.safetensors", 16, _train_cfg(1)))
    side = out.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["config"].update(change)
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="h.safetensors"):
        load_net(out)


def test_train_service_then_index_other_archive(demo_archive, tmp_path):
    """The command line's path: train on one archive, index another of the same bands."""
    from rsgui.cli import main
    from rsgui.demo import make_demo_archive
    from rsgui.encoders import load_trained_encoder
    from rsgui.index_store import HashIndex

    out = tmp_path / "m.safetensors"
    rc = main(
        ["train", str(demo_archive), "--method", "deephash", "--bits", "16", "--steps", "3",
         "--batch-size", "8", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    enc = load_trained_encoder(out, "deephash")
    assert enc.describe()["bands"] == "rgb" and enc.meta["config"]["variant"] == "improved"
    other = make_demo_archive(tmp_path / "other", n_per_class=2, seed=5)
    rc = main(["index", str(other), "--method", "deephash", "--model", str(out),
               "--out", str(tmp_path / "idx")])  # fmt: skip
    assert rc == 0
    idx = HashIndex.load(tmp_path / "idx")
    assert len(idx) == 20 and idx.meta.bits == 16 and idx.meta.method == "deephash"


@pytest.mark.realdata
def test_on_real_ms_tiles_it_beats_spectral_with_queries_held_out(real_archive, tmp_path):
    """The ten-band improved network, quick preset, trained with the labels of 211 of the 311
    real MS tiles; the other 100 query them, against ``spectral`` fitted on the same tiles."""
    from rsgui import ranking
    from rsgui.archive import Archive
    from rsgui.encoders import load_trained_encoder
    from rsgui.encoders.spectral import SpectralEncoder
    from rsgui.services.training import train_job
    from rsgui.subset import ArchiveSubset

    arc = Archive.open(real_archive)
    q, db = held_out(arc.labels, per_class=10)
    out = tmp_path / "dh.safetensors"
    res = drive(train_job(ArchiveSubset(arc, db), "deephash", out, bands="ms10", bits=32))
    enc = load_trained_encoder(res.path, "deephash")
    assert enc.meta["config"]["variant"] == "improved"
    spec = SpectralEncoder.fit(ArchiveSubset(arc, db), "ms10", 32)

    def codes(encode, idx):
        return np.concatenate([encode(b) for b in ArchiveSubset(arc, idx).iter_batches("ms10")])

    def p10(encode):
        order = ranking.rank(codes(encode, q), codes(encode, db), True, k=10)
        return (arc.labels[db][order] == arc.labels[q][:, None]).mean()

    p_dh, p_s = p10(lambda b: enc.encode(b.pixels)), p10(lambda b: spec.encode(b.pixels, b.valid))
    assert p_dh > p_s + 0.1, (p_dh, p_s)
