"""Band names, band sets and presets: positions are looked up by name, never assumed."""

from __future__ import annotations

import pytest

from rsgui.bands import (
    BAND_SETS,
    EUROSAT_MS_ORDER,
    EUROSAT_RGB_ORDER,
    PRESETS,
    S2_BANDS,
    Normalisation,
    band_indices,
    default_band_names,
    file_band_names,
    parse_band_name,
    parse_band_order,
    parse_descriptions,
    resolve_band_set,
)
from rsgui.errors import MissingBandsError


def test_eurosat_ms_order_has_b8a_last():
    assert EUROSAT_MS_ORDER[12] == "B8A" and EUROSAT_MS_ORDER[8] == "B09"
    assert sorted(EUROSAT_MS_ORDER) == sorted(S2_BANDS) and S2_BANDS[8] == "B8A"


@pytest.mark.parametrize(
    ("name", "positions"),
    [
        ("rgb", [3, 2, 1]),
        ("ms10", [1, 2, 3, 4, 5, 6, 7, 12, 10, 11]),
        ("all", list(range(13))),
    ],
)
def test_band_set_positions_in_eurosat_files(name, positions):
    names = resolve_band_set(name, EUROSAT_MS_ORDER)
    assert band_indices(EUROSAT_MS_ORDER, names) == positions


def test_ms10_is_the_ten_and_twenty_metre_bands():
    assert len(BAND_SETS["ms10"]) == 10 and "B10" not in BAND_SETS["ms10"]
    assert {"B01", "B09", "B10"}.isdisjoint(BAND_SETS["ms10"])


@pytest.mark.parametrize("wanted", ["ms10", ["B04", "B8A"]])
def test_missing_bands_named(wanted):
    with pytest.raises(MissingBandsError) as err:
        resolve_band_set(wanted, EUROSAT_RGB_ORDER)
    assert "B8A" in err.value.missing and "B8A" in str(err.value)


def test_unknown_band_set():
    with pytest.raises(ValueError, match="unknown band set"):
        resolve_band_set("nir", EUROSAT_MS_ORDER)


def test_explicit_list_keeps_order():
    assert resolve_band_set(["B8A", "B02"], EUROSAT_MS_ORDER) == ("B8A", "B02")
    assert band_indices(EUROSAT_MS_ORDER, ("B8A", "B02")) == [12, 1]


def test_normalisation_round_trip():
    n = Normalisation(3000, 10000)
    assert Normalisation.from_dict(n.to_dict()) == n
    assert Normalisation() == Normalisation(4095.0, 4095.0)


@pytest.mark.parametrize(
    ("preset", "order", "divisor"),
    [("eurosat-ms", EUROSAT_MS_ORDER, 4095), ("eurosat-rgb", EUROSAT_RGB_ORDER, 255)],
)
def test_presets(preset, order, divisor):
    p = PRESETS[preset]
    assert p.band_names == order and p.normalisation.divisor == divisor and p.labelled


# --------------------------------------------------------------------------- naming a file's bands
@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("B02", "B02"), ("B2", "B02"), ("b8a", "B8A"), ("B8A (narrow NIR)", "B8A"),
        (" B12 ", "B12"), ("B02 blue", "B02"), ("B13", None), ("B00", None), ("B9A", None),
        ("B02x", None), ("red", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_parse_band_name(text, name):
    assert parse_band_name(text) == name


def test_parse_descriptions_needs_every_band_named_once():
    assert parse_descriptions(["B2", "b03", "B04 red"]) == ("B02", "B03", "B04")
    assert parse_descriptions(["B02", "B02"]) is None
    assert parse_descriptions(["B02", None]) is None
    assert parse_descriptions(None) is None and parse_descriptions([]) is None


def test_parse_band_order():
    assert parse_band_order("B4, B3,B2") == ("B04", "B03", "B02")
    assert parse_band_order(["b8a"]) == ("B8A",)
    assert parse_band_order(None) is None and parse_band_order(" , ") is None
    with pytest.raises(ValueError, match="not a Sentinel-2 band"):
        parse_band_order("B04,XX")
    with pytest.raises(ValueError, match="named twice"):
        parse_band_order("B04,B4")


def test_default_band_names_by_count():
    assert default_band_names(13) == EUROSAT_MS_ORDER
    assert default_band_names(3) == EUROSAT_RGB_ORDER
    assert default_band_names(2) == ("band1", "band2")


@pytest.mark.parametrize(
    ("descriptions", "order", "preset", "expected"),
    [
        (["B04", "B03", "B02"], ("B02", "B03", "B04"), EUROSAT_RGB_ORDER,
         (("B04", "B03", "B02"), "file")),  # descriptions travel with the pixels: they win
        (["red", "green", "blue"], ("B02", "B03", "B04"), EUROSAT_RGB_ORDER,
         (("B02", "B03", "B04"), "setting")),
        (None, None, EUROSAT_RGB_ORDER, (EUROSAT_RGB_ORDER, "preset")),
        (None, None, (), (EUROSAT_RGB_ORDER, "default")),
        (None, ("B02", "B03"), EUROSAT_RGB_ORDER, (None, "setting")),  # names 2 of 3 bands
        (None, None, EUROSAT_MS_ORDER, (None, "preset")),
    ],
)  # fmt: skip
def test_file_band_names_is_the_one_rule(descriptions, order, preset, expected):
    assert file_band_names(descriptions, 3, order, preset) == expected
