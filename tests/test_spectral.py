"""The training-free spectral method on the demo archive: fits, retrieves by class, round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsgui.archive import Archive
from rsgui.encoders import Encoder
from rsgui.encoders.spectral import SpectralEncoder, SpectralSettings
from rsgui.errors import MissingBandsError
from rsgui.index_store import HashIndex
from rsgui.progress import drive
from rsgui.services.evaluation import evaluate
from rsgui.services.indexing import build_index, build_index_job
from rsgui.services.search import encode_query, encoder_for_index


@pytest.fixture(scope="module")
def archive(demo_archive) -> Archive:
    return Archive.open(demo_archive)


@pytest.mark.parametrize(("bands", "bits"), [("ms10", 32), ("rgb", 64), ("all", 16)])
def test_retrieves_same_class_far_better_than_chance(archive, bands, bits):
    enc = SpectralEncoder.fit(archive, bands, bits)
    assert isinstance(enc, Encoder)
    assert enc.method == "spectral" and enc.kind == "binary" and enc.bits == bits
    index = build_index(archive, enc)
    assert len(index) == len(archive)
    result = evaluate(index)
    chance = 1 / len(archive.classes)
    assert result.map_retrieved[20] > max(0.5, 4 * chance)
    assert result.precision[10] > 2.5 * chance


def test_padded_bits_when_features_are_short(archive):
    # rgb global histograms have 3 x 16 = 48 dimensions; 64 bits need 16 random ones
    enc = SpectralEncoder.fit(archive, "rgb", 64)
    d = enc.describe()
    assert d["pca_bits"] == 48 and d["random_bits"] == 16
    codes = enc.encode(archive.read(range(20), enc.band_names).pixels)
    assert codes.shape == (20, 64)


def test_state_round_trip_through_a_saved_index(archive, tmp_path):
    enc = SpectralEncoder.fit(archive, "ms10", 32)
    index = build_index(archive, enc)
    index.save(tmp_path / "idx")
    loaded = HashIndex.load(tmp_path / "idx")
    again = encoder_for_index(loaded)
    assert again.band_names == enc.band_names and again.bits == enc.bits
    assert again.describe() == enc.describe()
    tiles = archive.read([0, 7, 33], enc.band_names).pixels
    np.testing.assert_array_equal(again.encode(tiles), enc.encode(tiles))
    # a query file is encoded to the stored code
    q = encode_query(loaded, archive.path_of(7), again)
    np.testing.assert_array_equal(q > 0, enc.encode(tiles[1:2]) > 0)
    json.dumps(loaded.meta.to_dict())  # everything in the metadata is JSON


def test_settings_change_the_features(archive):
    plain = SpectralEncoder.fit(
        archive, "ms10", 16, settings=SpectralSettings(stretch=None, power=1.0, bins=8)
    )
    assert plain.band_low is None and plain.projection.dim == 80
    tuned = SpectralEncoder.fit(archive, "ms10", 16)
    assert tuned.band_low is not None and tuned.projection.dim == 160
    assert np.all(tuned.band_high > tuned.band_low)


def test_fit_is_deterministic_and_subsamples(archive):
    a = SpectralEncoder.fit(archive, "ms10", 16, max_fit_tiles=25)
    b = SpectralEncoder.fit(archive, "ms10", 16, max_fit_tiles=25)
    assert a.describe()["n_fit_tiles"] == 25
    np.testing.assert_array_equal(a.projection.rotation, b.projection.rotation)


def test_progress_and_cancel(archive):
    calls = []
    SpectralEncoder.fit(
        archive,
        "rgb",
        8,
        batch_size=16,
        on_progress=lambda p: calls.append((p.stage, p.done, p.total)),
    )
    fit = [(d, t) for stage, d, t in calls if stage == "fit"]
    assert fit[-1] == (len(archive), len(archive))
    assert [c[0] for c in fit] == sorted(c[0] for c in fit)
    assert {stage for stage, _, _ in calls} == {"stretch", "fit"}
    job = SpectralEncoder.fit_job(archive, "rgb", 8)  # cancel: the consumer closes the job
    next(job)
    job.close()
    with pytest.raises(StopIteration):
        next(job)
    enc = SpectralEncoder.fit(archive, "rgb", 8)
    # right after the fit, indexing reuses the features of its pass: nothing is read again
    once = [p for p in build_index_job(archive, enc, batch_size=16) if p.stage == "encode"]
    assert [(p.done, p.total) for p in once] == [(len(archive), len(archive))]
    job = build_index_job(archive, enc, batch_size=16)  # a second index reads batch by batch
    first = next(job)
    assert first.stage == "encode" and first.done == 16 and first.total == len(archive)
    job.close()


def test_one_pass_gives_the_same_codes_as_reading_again(archive):
    enc = SpectralEncoder.fit(archive, "ms10", 32)
    reused = drive(enc.archive_codes_job(archive))
    fresh = drive(enc.archive_codes_job(archive))  # the stash is used once; this one reads
    np.testing.assert_array_equal(reused > 0, fresh > 0)
    np.testing.assert_allclose(reused, fresh, atol=1e-5)


def test_refusals(archive):
    with pytest.raises(MissingBandsError, match="B99|missing"):
        SpectralEncoder.fit(archive, ["B02", "B99"], 16)
    with pytest.raises(ValueError, match="bits"):
        SpectralEncoder.fit(archive, "rgb", 0)
    enc = SpectralEncoder.fit(archive, "rgb", 8)
    with pytest.raises(ValueError, match="bands"):
        enc.encode(np.zeros((1, 10, 64, 64), np.float32))


@pytest.mark.parametrize("k", [1, 3, 40])
def test_search_leaves_an_archive_query_out_among_ties(archive, k):
    from rsgui.services.search import search

    enc = SpectralEncoder.fit(archive, "rgb", 2)  # 2 bits: a quarter of the archive shares a code
    index = build_index(archive, enc)
    last = len(archive) - 1  # the last tile in archive order loses every tie by default
    for i in (last, 0):
        q = archive.path_of(i)
        res = search(index, q, k)
        rows = res.rows
        assert [r.rank for r in rows] == list(range(1, k + 1))
        assert all(r.query == str(q) for r in rows)
        assert str(q) not in {r.path for r in rows}, "the query tile is left out"
        assert [r.distance for r in rows] == sorted(r.distance for r in rows)
        assert len({r.path for r in rows}) == k
        assert res.query_label == archive.records[i].label
