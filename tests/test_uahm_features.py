"""UAHM's improved variant: a hash network on the frozen training-free vectors, trained with the
kNN graph of those vectors (no labels), and the model file that carries its extractor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import held_out

from rsgui import metrics, ranking
from rsgui.archive import Archive
from rsgui.encoders import load_trained_encoder
from rsgui.errors import ModelFileError
from rsgui.index_store import HashIndex
from rsgui.progress import drive
from rsgui.services.evaluation import evaluate
from rsgui.services.indexing import index_job
from rsgui.services.search import encode_query, encoder_for_index
from rsgui.services.training import plan_uahm, train_job
from training.checkpoint import load_checkpoint
from training.losses import likelihood_loss
from training.ssm import SSMConfig, knn_graph_job, knn_k, pair_precision, resolve_k
from training.train_uahm import TrainSettings, encode, load_networks, preset_config, train
from training.uahm import UAHMConfig

torch.set_num_threads(1)

DIM, BITS = 24, 16


def clusters(n_per: int = 40, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vectors around ``k`` random centres: what a good backbone makes of ``k`` land covers."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, DIM)) * 2
    y = np.repeat(np.arange(k), n_per)
    return (centres[y] + rng.normal(size=(len(y), DIM))).astype(np.float32), y


def feature_cfg(**kw) -> UAHMConfig:
    base = dict(bits=BITS, input="features", feature_dim=DIM, hidden=32, adversarial=False)
    return UAHMConfig(**{**base, **kw})


def feature_settings(**kw) -> TrainSettings:
    base = dict(steps=150, batch_size=32, lr=3e-3, w_semantic=10.0, w_binary=1.0,
                semantic_loss="likelihood", positive_weight=5.0, pair_sampling=True,
                checkpoint_every=0, log_every=10)  # fmt: skip
    return TrainSettings(**{**base, **kw})


def held_out_map(d, x, y, q) -> float:
    db = np.setdiff1d(np.arange(len(y)), q)
    order = ranking.rank(encode(d, x[q], "cpu"), encode(d, x[db], "cpu"), True, k=20)
    rel = y[db][order] == y[q][:, None]
    return metrics.map_at_k(rel, 20)


# ------------------------------------------------------------------------------ kNN graph


@pytest.mark.parametrize("k", [1, 3, 7])
def test_knn_graph_is_symmetric_and_holds_each_tiles_neighbours(k):
    x, _ = clusters(n_per=10)
    s = drive(knn_graph_job(x, k, block=8)).dense() > 0
    assert (s == s.T).all() and s.diagonal().all()
    f = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = f @ f.T
    np.fill_diagonal(cos, -np.inf)
    nearest = np.argsort(-cos, axis=1)[:, :k]
    assert all(s[i, nearest[i]].all() for i in range(len(x)))
    assert (s.sum(axis=1) >= k + 1).all()


@pytest.mark.parametrize(("n", "k"), [(311, 5), (5000, 20), (25000, 100), (100_000, 100)])
def test_knn_k_scales_with_the_archive(n, k):
    assert knn_k(n) == k
    assert resolve_k(n, SSMConfig(mode="knn")) == (k, 0)


def test_pair_precision_counts_the_graphs_pairs_of_one_class():
    x, y = clusters(n_per=20, k=4)
    s = drive(knn_graph_job(x, 5))
    assert pair_precision(s, y) > 0.95  # well-separated land covers: neighbours share a class
    shuffled = np.random.default_rng(1).permutation(y)
    assert pair_precision(s, shuffled) < 0.5  # chance is 0.25


def test_knn_graph_refuses_impossible_k():
    x, _ = clusters(n_per=2, k=2)
    with pytest.raises(ValueError, match="K=4"):
        drive(knn_graph_job(x, 4))


# ------------------------------------------------------------------------------ loss


def test_likelihood_loss_rewards_codes_that_follow_the_similarities():
    s = torch.tensor([[1, 1, -1], [1, 1, -1], [-1, -1, 1]])
    good = torch.tensor([[1.0] * 8, [1.0] * 8, [-1.0] * 8])
    bad = torch.tensor([[1.0] * 8, [-1.0] * 8, [1.0] * 8])
    assert likelihood_loss(good, s) < likelihood_loss(torch.zeros(3, 8), s)
    assert likelihood_loss(torch.zeros(3, 8), s) < likelihood_loss(bad, s)
    # weighing similar pairs up moves the mean towards them: a code that gets only them wrong
    s4 = torch.tensor([[1, 1, -1], [1, 1, -1], [-1, -1, 1]])
    split_pair = torch.tensor([[1.0] * 8, [-1.0] * 8, [1.0] * 4 + [-1.0] * 4])  # 0/1 wrong
    assert likelihood_loss(split_pair, s4, positive_weight=10) > likelihood_loss(split_pair, s4)


# ------------------------------------------------------------------------------ training


def test_training_on_features_ranks_held_out_vectors_far_above_chance(tmp_path):
    x, y = clusters()
    q = np.arange(0, len(y), 8)  # held out of training
    t = np.setdiff1d(np.arange(len(y)), q)
    ssm = drive(knn_graph_job(x[t], 5))
    out = tmp_path / "m.safetensors"
    drive(train(feature_cfg(), feature_settings(), x[t], ssm, out=out, meta={}))
    _, g, d, _ = load_networks(out)
    assert g is None  # the improved variant has no generator
    assert held_out_map(d, x, y, q) > 0.9  # chance: 0.25


def test_feature_models_resume_exactly(tmp_path):
    x, _ = clusters(n_per=10)
    ssm = drive(knn_graph_job(x, 3))
    full, part = tmp_path / "full.safetensors", tmp_path / "part.safetensors"
    drive(train(feature_cfg(), feature_settings(steps=6), x, ssm, out=full, meta={}))
    drive(train(feature_cfg(), feature_settings(steps=3), x, ssm, out=part, meta={}))
    drive(train(feature_cfg(), feature_settings(steps=6), x, ssm, out=part, meta={}, resume=part))
    a, b = load_checkpoint(full)[0], load_checkpoint(part)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_feature_models_refuse_tiles_and_vectors_of_another_length():
    x, _ = clusters(n_per=4)
    ssm = drive(knn_graph_job(x, 2))
    with pytest.raises(ValueError, match=f"features must be \\(N, {DIM}\\)"):
        drive(train(feature_cfg(), feature_settings(), x[:, :-1], ssm))
    with pytest.raises(ValueError, match="features must be"):
        drive(train(feature_cfg(), feature_settings(), np.zeros((16, 3, 8, 8), "f4"), ssm))


@pytest.mark.parametrize(
    ("preset", "variant", "dim", "method", "expected"),
    [
        ("quick", "improved", 1334, "uahm", "features"),
        ("cpu", "improved", 1334, "uahm", "features"),
        ("thesis", "thesis", 1334, "uahm", "tiles"),
        ("quick", "improved", 0, "uahm", "tiles"),  # no backbone: the pixel variant
        ("quick", "improved", 1334, "dhnn-ms", "tiles"),  # the thesis' other models keep pixels
    ],
)
def test_which_models_work_on_features(preset, variant, dim, method, expected):
    flags = {"dhnn-ms": dict(adversarial=False)}.get(method, {})
    model, settings, ssm = preset_config(
        method, preset, 5000, variant=variant, feature_dim=dim, channels=3, **flags
    )
    assert model.input == expected
    assert (ssm.mode == "knn") == (expected == "features")
    assert (settings.semantic_loss == "likelihood") == (expected == "features")


# ------------------------------------------------------------------------------ on an archive

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def trained(demo_archive, tmp_path_factory):
    """The quick preset of UAHM trained on the demo archive (true colour, 32 bits), few steps."""
    out = tmp_path_factory.mktemp("uahm") / "u.safetensors"
    arc = Archive.open(demo_archive)
    res = drive(train_job(arc, "uahm", out, bands="rgb", bits=32, steps=300, device="cpu"))
    return arc, res.path


def test_the_quick_preset_trains_on_features_and_records_its_extractor(trained):
    arc, path = trained
    _, meta = load_checkpoint(path)
    assert meta["model"]["input"] == "features" and meta["model"]["adversarial"] is False
    ex = meta["extractor"]
    assert len(ex["block_mean"]) == meta["model"]["feature_dim"] == 1280 + 3 * 18
    assert meta["ssm"]["mode"] == "knn"
    enc = load_trained_encoder(path, "uahm")
    assert enc.band_names == ("B04", "B03", "B02") and enc.uses_mask


def test_its_index_ranks_far_better_than_chance_and_finds_a_query_tile(trained, tmp_path):
    arc, path = trained
    res = drive(index_job(arc, "uahm", tmp_path / "idx", model=path))
    index = HashIndex.load(res.path)
    ev = evaluate(index)
    chance = 1 / len(arc.classes)
    assert ev.map_retrieved[20] > max(0.5, 4 * chance)
    assert ev.precision[10] > 2.5 * chance
    q = encode_query(index, arc.path_of(11), encoder_for_index(index))
    idx, dist = index.search(q, k=3)
    assert dist[0][0] == 0 and 11 in idx[0][dist[0] == 0]


def test_indexing_reuses_the_features_the_training_computed(trained, tmp_path, monkeypatch):
    import training.backbone

    arc, path = trained
    seen = []
    real = training.backbone.load_backbone

    def counting(*a, **k):
        net = real(*a, **k)
        return lambda x: (seen.append(len(x)), net(x))[1]

    monkeypatch.setattr(training.backbone, "load_backbone", counting)
    drive(index_job(arc, "uahm", tmp_path / "idx", model=path))
    assert sum(seen) == 0  # every vector came from the archive's feature cache


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("block_std", "negative", "spreads must be positive"),
        ("block_mean", "short", "standardisation of shape"),
        ("band_low", "nan", "finite"),
        ("settings", {"backbone": "resnet-9000"}, "unknown backbone"),
    ],
)
def test_a_tampered_extractor_is_refused_naming_the_file(trained, tmp_path, field, value, message):
    import shutil

    _, path = trained
    bad = tmp_path / "bad.safetensors"
    shutil.copy(path, bad)
    meta = json.loads(path.with_suffix(".json").read_text())
    ex = meta["extractor"]
    if value == "negative":
        ex[field] = [-1.0] * len(ex[field])
    elif value == "short":
        ex[field] = ex[field][:-1]
        ex["block_std"] = ex["block_std"][:-1]
    elif value == "nan":
        ex[field] = [float("nan")] * len(ex[field])
    else:
        ex[field] = value
    bad.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=message) as e:
        load_trained_encoder(bad, "uahm")
    assert "bad.safetensors" in str(e.value)


def test_the_thesis_variant_stays_selectable(demo_archive):
    plan = plan_uahm(Archive.open(demo_archive), "uahm", "rgb", 32, "quick", variant="thesis")
    assert plan.model_cfg.input == "tiles" and plan.model_cfg.adversarial


@pytest.mark.realdata
def test_on_real_tiles_it_beats_spectral_with_queries_held_out(real_archive, tmp_path):
    """The quick preset, trained without labels on 211 of the 311 real MS tiles, against
    ``spectral`` fitted on the same tiles; the other 100 query them (measured: MAP@20 0.734 /
    P@10 0.663 against 0.650 / 0.561)."""
    from rsgui.encoders.spectral import SpectralEncoder
    from rsgui.subset import ArchiveSubset

    arc = Archive.open(real_archive)
    q, db = held_out(arc.labels, per_class=10)
    res = drive(
        train_job(
            ArchiveSubset(arc, db),
            "uahm",
            tmp_path / "u.safetensors",
            bands="ms10",
            bits=64,
            device="cpu",
        )
    )
    enc = load_trained_encoder(res.path, "uahm")
    uahm = (
        drive(enc.archive_codes_job(ArchiveSubset(arc, q))),
        drive(enc.archive_codes_job(ArchiveSubset(arc, db))),
    )
    spec = SpectralEncoder.fit(ArchiveSubset(arc, db), "ms10", 64)
    spectral = tuple(
        np.concatenate(
            [spec.encode(b.pixels, b.valid) for b in ArchiveSubset(arc, i).iter_batches("ms10")]
        )
        for i in (q, db)
    )

    def scores(codes):
        order = ranking.rank(codes[0], codes[1], True, k=20)
        rel = arc.labels[db][order] == arc.labels[q][:, None]
        return metrics.map_at_k(rel, 20), rel[:, :10].mean()

    (m_u, p_u), (m_s, p_s) = scores(uahm), scores(spectral)
    assert m_u > m_s + 0.03 and p_u > p_s + 0.03, (m_u, p_u, m_s, p_s)
