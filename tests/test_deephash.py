"""Supervised deep hashing: losses on worked examples, training loop, encoder and index command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsgui.progress import drive
from training.deephash import (
    DeepHashConfig,
    DeepHashNet,
    balance_loss,
    binary_loss,
    triplet_loss,
    triplet_loss_all,
)
from training.train_deephash import DeepHashData, DeepHashTrainConfig, train_deephash

torch.set_num_threads(1)

RGB = ("B04", "B03", "B02")
MS10 = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
TINY = {"hidden1": 32, "hidden2": 16, "cnn_width": 4, "dropout": 0.0}


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def test_triplet_loss_worked_example():
    a = t([[1, 0], [1, 0]])
    p = t([[1, 0], [0, 0]])
    n = t([[0, 1], [1, 0]])
    # triplet 1: 0 - 2 + 1 -> 0 (hinge); triplet 2: 1 - 0 + 1 = 2; mean = 1
    assert triplet_loss(a, p, n, margin=1.0).item() == pytest.approx(1.0)
    assert triplet_loss(a, p, n, margin=0.0).item() == pytest.approx(0.5)


def test_triplet_all_matches_enumeration():
    g = torch.Generator().manual_seed(0)
    a, n = torch.rand(4, 3, generator=g), torch.rand(3, 3, generator=g)
    vals = [
        max(0.0, float(((a[i] - a[j]) ** 2).sum() - ((a[i] - n[k]) ** 2).sum() + 0.5))
        for i in range(4)
        for j in range(4)
        if i != j
        for k in range(3)
    ]
    assert triplet_loss_all(a, n, 0.5).item() == pytest.approx(np.mean(vals), rel=1e-5)


@pytest.mark.parametrize(
    "f,binary,balance",
    [
        ([[1, 0], [1, 1]], -0.5, 0.125),  # eq. 4.10: -(0.5 + 0.5)/2; eq. 4.11: (0 + 0.25)/2
        ([[0.5, 0.5], [0.5, 0.5]], 0.0, 0.0),
        ([[0, 0, 0, 0]], -1.0, 0.25),
        ([[0.75, 0.25]], -0.125, 0.0),
    ],
)
def test_binary_and_balance_worked_examples(f, binary, balance):
    assert binary_loss(t(f)).item() == pytest.approx(binary)
    assert balance_loss(t(f)).item() == pytest.approx(balance)


@pytest.mark.parametrize("bands,shape", [("rgb", (5, 24)), ("ms10", (5, 10, 16, 16))])
@pytest.mark.parametrize("bits", [16, 32])
def test_network_shapes(bands, shape, bits):
    cfg = DeepHashConfig(bits=bits, bands=bands, in_features=24, **TINY)
    out = DeepHashNet(cfg)(torch.rand(shape))
    assert out.shape == (5, bits) and 0 < out.min() and out.max() < 1


def _feature_data(n_per=12, dim=24, seed=0) -> DeepHashData:
    """Three well separated Gaussian classes in feature space."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, dim))
    labels = np.repeat(np.arange(3), n_per)
    x = centres[labels] + rng.normal(0, 0.3, (len(labels), dim))
    return DeepHashData(
        x.astype(np.float32), labels, np.zeros(len(labels), bool), ("A", "B", "C"), RGB,
        {"clip": 4095.0, "divisor": 4095.0}, "rgb", {"input_size": 75, "rgb_gain": 1.0},
    )  # fmt: skip


def _cfg(steps, **kw) -> DeepHashTrainConfig:
    return DeepHashTrainConfig(steps=steps, batch_pos=8, batch_neg=4, model=TINY, **kw)


def test_training_separates_classes(tmp_path):
    data = _feature_data()
    path = drive(train_deephash(data, tmp_path / "h.safetensors", 16, _cfg(150, lr=3e-3)))
    from training.train_deephash import hash_outputs, load_net

    net, meta = load_net(path)
    codes = hash_outputs(net, data.inputs) > 0.5
    ham = (codes[:, None] != codes[None]).sum(-1)
    same = data.labels[:, None] == data.labels[None]
    assert ham[same].mean() + 3 < ham[~same].mean()
    assert (
        meta["method"] == "deephash" and meta["bits"] == 16 and meta["classes"] == ["A", "B", "C"]
    )
    assert meta["band_names"] == list(RGB) and meta["step"] == 150


def test_cancel_and_resume(tmp_path):
    data = _feature_data()
    out = tmp_path / "h.safetensors"
    job = train_deephash(data, out, 16, _cfg(5))
    next(job), next(job)
    job.close()  # cancel after two steps: the generator writes its checkpoint
    from training.checkpoint import load_checkpoint

    assert load_checkpoint(out)[1]["step"] == 2
    drive(train_deephash(data, out, 16, _cfg(5), resume=out))
    assert load_checkpoint(out)[1]["step"] == 5
    with pytest.raises(ValueError, match="bit"):
        next(train_deephash(data, out, 32, _cfg(6), resume=out))
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_needs_two_classes(tmp_path):
    data = _feature_data()
    data.labels[:] = 0
    with pytest.raises(ValueError, match="two classes"):
        next(train_deephash(data, tmp_path / "h.safetensors", 16, _cfg(2)))


@pytest.fixture(scope="module")
def tiny_feature_net(tmp_path_factory) -> str:
    """A TorchScript stand-in for Inception: per-band means and spreads, (N, 24) features."""

    class Tiny(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=(2, 3))
            s = x.std(dim=(2, 3))
            return torch.cat([m, s, m * s, m - s] * 2, dim=1)

    path = tmp_path_factory.mktemp("feat") / "tiny.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(path))
    return str(path)


@pytest.mark.parametrize("bands", ["rgb", "ms10"])
def test_encoder_and_index_command(demo_archive, tmp_path, tiny_feature_net, bands):
    from rsgui.archive import Archive
    from rsgui.cli import main
    from rsgui.encoders import load_trained_encoder
    from rsgui.index_store import HashIndex
    from rsgui.services.training import prepare_deephash_data

    features = {"weights": tiny_feature_net, "input_size": 75, "rgb_gain": 1.0}
    out = tmp_path / "dh.safetensors"
    data = drive(prepare_deephash_data(demo_archive, bands, out=out, features=features))
    assert data.inputs.shape[0] == len(Archive.open(demo_archive))
    if bands == "rgb":  # features cached per tile beside the archive's indexes
        from rsgui.index_store import writable_index_dir

        cached = list((writable_index_dir(demo_archive) / "features").glob("*.npz"))
        assert data.inputs.shape[1] == 24 and cached
        stamp = {p: p.stat().st_mtime_ns for p in cached}
        again = drive(prepare_deephash_data(demo_archive, bands, out=out, features=features))
        np.testing.assert_allclose(again.inputs, data.inputs)
        assert {p: p.stat().st_mtime_ns for p in cached} == stamp  # all hits, nothing rewritten
    drive(train_deephash(data, out, 16, _cfg(3)))

    enc = load_trained_encoder(out, "deephash")
    assert enc.method == "deephash" and enc.kind == "binary" and enc.bits == 16
    assert enc.band_names == (RGB if bands == "rgb" else MS10)
    px = Archive.open(demo_archive).read([0, 1, 2], bands=list(enc.band_names)).pixels
    codes = enc.encode(px)
    assert codes.shape == (3, 16) and codes.dtype == np.float32
    assert np.abs(codes).max() < 0.5
    with pytest.raises(ValueError):
        enc.encode(px[:, :2])

    index = tmp_path / "idx"
    rc = main(
        [
            "index",
            str(demo_archive),
            "--method",
            "deephash",
            "--model",
            str(out),
            "--out",
            str(index),
        ]
    )
    assert rc == 0
    idx = HashIndex.load(index)
    assert (
        len(idx) == data.inputs.shape[0] and idx.meta.bits == 16 and idx.meta.method == "deephash"
    )
    # the index's codes (rgb: from the cached features) are the encoder's codes of the tiles
    from rsgui.codes import unpack_codes

    assert ((unpack_codes(idx.codes[:3], 16) > 0) == (codes > 0)).all()
