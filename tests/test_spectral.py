"""The training-free spectral method on the demo archive: fits, retrieves by class, round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsgui.archive import Archive
from rsgui.bands import MissingBandsError
from rsgui.encoders import Encoder
from rsgui.evaluation import evaluate
from rsgui.index import HashIndex
from rsgui.indexing import Cancelled, build_index, encode_query, encoder_for_index
from rsgui.spectral import SpectralEncoder, SpectralSettings


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
        archive, "rgb", 8, batch_size=16, progress=lambda d, t, n: calls.append((d, t))
    )
    assert calls[-1] == (len(archive), len(archive))
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    with pytest.raises(Cancelled):
        SpectralEncoder.fit(archive, "rgb", 8, cancel=lambda: True)
    enc = SpectralEncoder.fit(archive, "rgb", 8)
    seen = []

    def cancel_after_first_batch():
        seen.append(1)
        return len(seen) > 1

    with pytest.raises(Cancelled):
        build_index(archive, enc, batch_size=16, cancel=cancel_after_first_batch)


def test_refusals(archive):
    with pytest.raises(MissingBandsError, match="B99|missing"):
        SpectralEncoder.fit(archive, ["B02", "B99"], 16)
    with pytest.raises(ValueError, match="bits"):
        SpectralEncoder.fit(archive, "rgb", 0)
    enc = SpectralEncoder.fit(archive, "rgb", 8)
    with pytest.raises(ValueError, match="bands"):
        enc.encode(np.zeros((1, 10, 64, 64), np.float32))


@pytest.mark.parametrize("k", [1, 3, 40])
def test_search_lists_an_archive_query_first_among_ties(archive, k):
    from rsgui.indexing import search_files

    enc = SpectralEncoder.fit(archive, "rgb", 2)  # 2 bits: a quarter of the archive shares a code
    index = build_index(archive, enc)
    last = len(archive) - 1  # the last tile in archive order loses every tie by default
    rows = search_files(index, [archive.path_of(last), archive.path_of(0)], k)
    assert len(rows) == 2 * k
    first = [r for r in rows if r.rank == 1]
    assert [r.path for r in first] == [archive.records[last].path, archive.records[0].path]
    assert all(r.distance == 0 for r in first)
    for q in (str(archive.path_of(last)), str(archive.path_of(0))):
        mine = [r for r in rows if r.query == q]
        assert [r.rank for r in mine] == list(range(1, k + 1))
        assert [r.distance for r in mine] == sorted(r.distance for r in mine)
        assert len({r.path for r in mine}) == k
