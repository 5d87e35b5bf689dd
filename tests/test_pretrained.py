"""The training-free ``pretrained`` method: backbone + band statistics + ITQ, and its feature cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsgui.archive import Archive
from rsgui.encoders import registry
from rsgui.encoders.pretrained import PretrainedEncoder, PretrainedSettings
from rsgui.errors import IndexMismatchError, JobError
from rsgui.feature_cache import FeatureCache
from rsgui.index_store import HashIndex
from rsgui.progress import drive
from rsgui.services.evaluation import evaluate
from rsgui.services.indexing import index_job
from rsgui.services.search import encode_query, encoder_for_index

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def archive(demo_archive) -> Archive:
    return Archive.open(demo_archive)


class CountingBackbone:
    """Stands in for the backbone: counts the tiles it sees, returns their channel means."""

    def __init__(self):
        self.seen = 0

    def __call__(self, rgb):
        self.seen += len(rgb)
        m = rgb.mean(dim=(2, 3))
        return m.repeat(1, 1280 // 3 + 1)[:, :1280]


@pytest.fixture
def fresh(demo_archive, tmp_path) -> Archive:
    """A copy of the demo archive with no feature cache yet."""
    import shutil

    shutil.copytree(demo_archive, tmp_path / "arc", ignore=shutil.ignore_patterns(".rsgui"))
    return Archive.open(tmp_path / "arc")


@pytest.fixture
def fake_backbone(monkeypatch):
    import training.backbone

    net = CountingBackbone()
    monkeypatch.setattr(training.backbone, "load_backbone", lambda *a, **k: net)
    return net


@pytest.mark.parametrize(("bands", "bits"), [("ms10", 32), ("rgb", 64)])
def test_real_backbone_ranks_far_better_than_chance(archive, tmp_path, bands, bits):
    result = drive(index_job(archive, "pretrained", tmp_path / "idx", bands=bands, bits=bits))
    index = HashIndex.load(result.path)
    assert index.meta.method == "pretrained" and index.meta.bits == bits
    chance = 1 / len(archive.classes)
    ev = evaluate(index)
    assert ev.map_retrieved[20] > max(0.5, 4 * chance)
    assert ev.precision[10] > 2.5 * chance


def test_a_tile_as_query_finds_itself_from_the_saved_index(archive, tmp_path):
    result = drive(index_job(archive, "pretrained", tmp_path / "idx", bits=32))
    index = HashIndex.load(result.path)
    enc = encoder_for_index(index)
    assert isinstance(enc, PretrainedEncoder)
    q = encode_query(index, archive.path_of(7), enc)
    idx, dist = index.search(q, k=3)
    assert dist[0][0] == 0 and 7 in idx[0][dist[0] == 0]


def test_features_are_computed_once_then_cached(fresh, tmp_path, fake_backbone):
    drive(index_job(fresh, "pretrained", tmp_path / "a", bits=16))
    first = fake_backbone.seen
    assert first == len(fresh)
    drive(
        index_job(Archive.open(fresh.root), "pretrained", tmp_path / "b", bits=32)
    )  # another code length
    assert fake_backbone.seen == first  # every vector came from the cache


def test_a_changed_tile_is_computed_again(fresh, tmp_path, fake_backbone):
    root = fresh.root
    arc = fresh
    drive(index_job(arc, "pretrained", tmp_path / "a", bits=16))
    seen = fake_backbone.seen
    victim = arc.path_of(3)
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF  # pixels change, size stays
    victim.write_bytes(bytes(data))
    drive(index_job(Archive.open(root), "pretrained", tmp_path / "b", bits=16))
    assert fake_backbone.seen == seen + 1


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04garbage", b"not a zip at all"])
def test_a_damaged_cache_is_a_miss_not_an_error(tmp_path, damage):
    cache = FeatureCache(tmp_path, {"k": 1}, dim=4)
    cache.store(["a", "b"], np.zeros((2, 3)), np.ones((2, 4)))
    feats, hit = cache.lookup(["a", "b", "c"], np.zeros((3, 3)))
    assert hit.tolist() == [True, True, False] and feats[0].tolist() == [1, 1, 1, 1]
    _, hit = cache.lookup(["a"], np.ones((1, 3)))  # stats changed: a miss
    assert not hit.any()
    cache.path.write_bytes(damage)
    _, hit = cache.lookup(["a", "b"], np.zeros((2, 3)))
    assert not hit.any()


def test_storing_some_tiles_keeps_the_others(tmp_path):
    cache = FeatureCache(tmp_path, {"k": 1}, dim=2)
    cache.store(["a", "b"], np.zeros((2, 3)), [[1, 1], [2, 2]])
    cache.store(["c", "a"], np.ones((2, 3)), [[3, 3], [4, 4]])  # a changed, c new
    feats, hit = cache.lookup(["a", "b", "c"], np.array([[1, 1, 1], [0, 0, 0], [1, 1, 1]]))
    assert hit.all() and feats[:, 0].tolist() == [4, 2, 3]


def test_a_cache_of_another_setting_is_not_used(tmp_path):
    FeatureCache(tmp_path, {"k": 1}, dim=4).store(["a"], np.zeros((1, 3)), np.ones((1, 4)))
    _, hit = FeatureCache(tmp_path, {"k": 2}, dim=4).lookup(["a"], np.zeros((1, 3)))
    assert not hit.any()


def test_needs_the_true_colour_bands(archive, tmp_path):
    with pytest.raises(JobError, match="B04, B03 and B02"):
        drive(index_job(archive, "pretrained", tmp_path / "x", bands=("B08", "B11")))


@pytest.mark.parametrize(
    "bad", [{"input_size": 10**9}, {"backbone": "hub://x"}, {"stretch": [0, 500]}]
)
def test_hostile_settings_in_an_index_are_refused(archive, tmp_path, fake_backbone, bad):
    result = drive(index_job(archive, "pretrained", tmp_path / "idx", bits=16))
    side = result.path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["encoder"].update(bad)
    side.write_text(json.dumps(meta))
    with pytest.raises((IndexMismatchError, ValueError)):
        encoder_for_index(HashIndex.load(result.path))


def test_registry_and_offer(monkeypatch):
    from rsgui.app.panels import index_offer

    assert registry.method("pretrained").trained is False
    assert registry.installed("pretrained")
    assert index_offer.offered_method() == "pretrained"
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if "efficientnet" in n else real(n, *a)
    )
    assert index_offer.offered_method() == "spectral"


def test_settings_round_trip():
    s = PretrainedSettings(input_size=128, seed=3)
    assert PretrainedSettings.from_dict(json.loads(json.dumps({**s.__dict__}))) == s
