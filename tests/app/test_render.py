"""Rendering tiles to pictures: stretches, composites, indices and missing bands, on hand-made
arrays whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from rsgui.app.models import Composite, ReferenceSample
from rsgui.app.render import (
    apply_stretch,
    band_limits,
    band_statistics,
    colormap_lut,
    fallback_composite,
    missing_bands,
    normalised_difference,
    pixel_values,
    render,
    render_safe,
    stretch_limits,
)
from rsgui.bands import COMPOSITES, EUROSAT_MS_ORDER
from rsgui.errors import MissingBandsError

RAMP = np.arange(101, dtype=np.float32).reshape(1, 101)  # 0..100: percentiles are the values


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("cumulative", (2.0, 98.0)),
        ("minmax", (0.0, 100.0)),
        ("stddev", (50.0 - 2 * RAMP.std(), 50.0 + 2 * RAMP.std())),
        ("fixed", (10.0, 20.0)),
    ],
)
def test_stretch_limits_on_a_ramp(method, expected):
    lo, hi = stretch_limits(RAMP, method, 2.0, 98.0, (10.0, 20.0))
    assert lo == pytest.approx(expected[0], abs=1e-4)
    assert hi == pytest.approx(expected[1], abs=1e-4)


def test_cumulative_cut_ignores_outliers_and_nans():
    band = np.full((10, 10), 100.0)
    band[0, :5] = 0.0  # 5 % dark outliers
    band[9, :5] = 10_000.0  # 5 % bright outliers
    band[5, 5] = np.nan
    lo, hi = stretch_limits(band, "cumulative", 10.0, 90.0)
    assert (lo, hi) == (100.0, 100.0)
    assert stretch_limits(band, "minmax") == (0.0, 10_000.0)


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 100.0), (25.0, 75.0)])
def test_apply_stretch_maps_linearly_and_clips(lo, hi):
    out = apply_stretch(RAMP, lo, hi)
    assert out.min() == 0.0 and out.max() == 1.0
    mid = (lo + hi) / 2
    assert out[0, int(mid)] == pytest.approx(0.5, abs=0.02)
    assert out.dtype == np.float32


def test_flat_band_does_not_divide_by_zero():
    out = apply_stretch(np.full((4, 4), 7.0), 7.0, 7.0)
    assert np.all(out == 0.0)


def _tile(values: dict[str, float], names=EUROSAT_MS_ORDER, size=8) -> np.ndarray:
    raw = np.zeros((len(names), size, size), np.float32)
    for name, v in values.items():
        raw[names.index(name)] = v
    return raw


def test_true_colour_puts_each_named_band_in_its_channel():
    names = EUROSAT_MS_ORDER
    raw = _tile({}, names)
    raw[names.index("B04"), :, :4] = 1000  # left half red-bright
    raw[names.index("B02"), :4, :] = 1000  # top half blue-bright
    img = render(raw, names, Composite(stretch="minmax", scope="tile"))
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    assert img[6, 1].tolist() == [255, 0, 0]
    assert img[1, 6].tolist() == [0, 0, 255]
    assert img[1, 1].tolist() == [255, 0, 255]


def test_band_order_comes_from_names_not_positions():
    """B8A is last in EuroSAT files: SWIR's green channel must read index 12, not 8."""
    names = EUROSAT_MS_ORDER
    raw = _tile({"B12": 0, "B8A": 0, "B04": 0}, names)
    raw[12, :, :4] = 500  # B8A
    raw[8, :, :] = 999  # B09 sits where B8A would be in spectral order
    img = render(raw, names, Composite(rgb=COMPOSITES["SWIR"], stretch="minmax", scope="tile"))
    assert img[0, 0, 1] == 255 and img[0, 7, 1] == 0


def test_ndvi_is_absolute_and_coloured():
    names = EUROSAT_MS_ORDER
    raw = _tile({"B08": 3000, "B04": 1000}, names)  # NDVI 0.5 everywhere
    raw[names.index("B08"), 0, 0] = 1000
    raw[names.index("B04"), 0, 0] = 3000  # NDVI -0.5
    nd = normalised_difference(raw[names.index("B08")], raw[names.index("B04")])
    assert nd[1, 1] == pytest.approx(0.5) and nd[0, 0] == pytest.approx(-0.5)
    img = render(raw, names, Composite(mode="index", index="NDVI"))
    green, red = img[1, 1], img[0, 0]
    assert green[1] > green[0] and red[0] > red[1]  # RdYlGn: high NDVI green, low red


def test_normalised_difference_of_zeros_is_zero():
    z = np.zeros((3, 3))
    assert np.all(normalised_difference(z, z) == 0.0)


def test_single_band_uses_the_colour_map():
    names = ("B01", "B02", "B03")
    raw = np.stack([np.tile(np.arange(4.0), (4, 1))] * 3)
    img = render(
        raw,
        names,
        Composite(mode="single", band="B02", colormap="viridis", stretch="minmax", scope="tile"),
    )
    lut = colormap_lut("viridis")
    assert img[0, 0].tolist() == lut[0].tolist()
    assert img[0, 3].tolist() == lut[255].tolist()
    grey = render(
        raw,
        names,
        Composite(mode="single", band="B02", colormap="gray", stretch="minmax", scope="tile"),
    )
    assert grey[0, 3].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    ("composite", "missing"),
    [
        (Composite(rgb=COMPOSITES["SWIR"]), ["B12", "B8A"]),
        (Composite(mode="index", index="NDVI"), ["B08"]),
        (Composite(mode="single", band="B11"), ["B11"]),
        (Composite(), []),
    ],
)
def test_missing_bands_are_reported_and_fall_back(composite, missing):
    rgb = ("B04", "B03", "B02")
    assert missing_bands(composite, rgb) == missing
    raw = np.random.default_rng(0).integers(0, 255, (3, 6, 6)).astype(np.float32)
    if missing:
        with pytest.raises(MissingBandsError):
            render(raw, rgb, composite)
        assert not missing_bands(fallback_composite(composite, rgb), rgb)
    assert render_safe(raw, rgb, composite).shape == (6, 6, 3)


def test_archive_scope_uses_the_reference_sample():
    names = ("B04", "B03", "B02")
    ref = ReferenceSample(names, np.tile(np.linspace(0, 1000, 101, dtype=np.float32), (3, 1)), 1)
    dark = np.full((3, 4, 4), 100.0, np.float32)
    dark[:, 0, 0] = 120.0
    c = Composite(stretch="minmax")
    assert band_limits(dark[0], c, "B04", ref) == (0.0, 1000.0)
    archive_img = render(dark, names, c, ref)
    tile_img = render(dark, names, c.with_(scope="tile"), ref)
    assert archive_img.max() < 40  # a dark tile stays dark against the archive
    assert tile_img.max() == 255  # stretched on its own it fills the range


def test_pixel_values_and_statistics_are_by_band_name():
    names = ("B02", "B8A")
    raw = np.stack([np.full((2, 3), 5.0), np.arange(6.0).reshape(2, 3)])
    assert pixel_values(raw, names, 1, 2) == {"B02": 5.0, "B8A": 5.0}
    assert pixel_values(raw, names, 5, 0) == {}
    stats = band_statistics(raw, names)
    assert [s["band"] for s in stats] == ["B02", "B8A"]
    assert stats[1]["min"] == 0 and stats[1]["max"] == 5 and stats[1]["mean"] == 2.5


def test_composite_settings_round_trip_and_tolerate_garbage():
    c = Composite(mode="single", band="B11", stretch="fixed", fixed_range=(5.0, 9.0), scope="tile")
    assert Composite.from_dict(c.to_dict()) == c
    assert Composite.from_dict({"mode": "nonsense", "stretch": 3, "rgb": ["B01"]}) == Composite()
