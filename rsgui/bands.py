"""Sentinel-2 band names, band sets, archive presets and composites.

Bands are always named (``"B02"``, ``"B8A"``), never addressed by position alone: the position of a
band in a file depends on the archive (EuroSAT MS puts B8A last), so every lookup goes through
:func:`band_indices`. How a file's bands get their names (descriptions, a user order, a preset,
the default by band count) is decided once, by :func:`file_band_names`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rsgui.errors import MissingBandsError

# Canonical spectral order of the 13 Sentinel-2 MSI bands.
S2_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip

# Band order inside EuroSAT_MS / EuroSATallBands GeoTIFFs: B8A is LAST (index 12).
EUROSAT_MS_ORDER: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)  # fmt: skip

# EuroSAT RGB JPEGs hold true colour in R, G, B order.
EUROSAT_RGB_ORDER: tuple[str, ...] = ("B04", "B03", "B02")

# Band sets used by the methods. ``all`` means every band the archive has, in file order.
BAND_SETS: dict[str, tuple[str, ...] | None] = {
    "rgb": ("B04", "B03", "B02"),
    "ms10": ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
    "all": None,
}

# Ground sampling distance in metres, for display.
BAND_RESOLUTION_M: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip


@dataclass(frozen=True)
class Normalisation:
    """Pixel scaling of the method: ``min(value, clip) / divisor``."""

    clip: float = 4095.0
    divisor: float = 4095.0

    def to_dict(self) -> dict[str, float]:
        return {"clip": self.clip, "divisor": self.divisor}

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        return cls(clip=float(d["clip"]), divisor=float(d["divisor"]))


@dataclass(frozen=True)
class ArchivePreset:
    """How to read a known archive layout: its band order, file types and normalisation."""

    name: str
    band_names: tuple[str, ...]
    extensions: tuple[str, ...]
    normalisation: Normalisation
    labelled: bool = True


PRESETS: dict[str, ArchivePreset] = {
    "eurosat-ms": ArchivePreset(
        "eurosat-ms", EUROSAT_MS_ORDER, (".tif", ".tiff"), Normalisation(4095.0, 4095.0)
    ),
    "eurosat-rgb": ArchivePreset(
        "eurosat-rgb", EUROSAT_RGB_ORDER, (".jpg", ".jpeg", ".png"), Normalisation(255.0, 255.0)
    ),
    "geotiff": ArchivePreset(
        "geotiff", (), (".tif", ".tiff"), Normalisation(4095.0, 4095.0), labelled=False
    ),
}


def resolve_band_set(name_or_bands: str | tuple[str, ...] | list[str], available: tuple[str, ...]):
    """The band names of a set (``rgb``, ``ms10``, ``all``) or an explicit list, checked against
    ``available``. Raises :class:`MissingBandsError` naming what is missing."""
    if isinstance(name_or_bands, str):
        if name_or_bands not in BAND_SETS:
            raise ValueError(
                f"unknown band set {name_or_bands!r}; choose from {', '.join(BAND_SETS)}"
            )
        wanted = BAND_SETS[name_or_bands]
        if wanted is None:
            return tuple(available)
    else:
        wanted = tuple(name_or_bands)
    band_indices(available, wanted)
    return tuple(wanted)


def _missing_bands(missing: list[str], available: tuple[str, ...]) -> MissingBandsError:
    """The error naming what lacks; ``missing`` and ``available`` ride along for callers that
    word their own message (a query tile, the command line)."""
    err = MissingBandsError(
        f"missing band(s) {', '.join(missing)}; available: {', '.join(available) or 'none'}"
    )
    err.missing = missing  # type: ignore[attr-defined]
    err.available = available  # type: ignore[attr-defined]
    return err


def band_indices(available: tuple[str, ...] | list[str], wanted: tuple[str, ...] | list[str]):
    """Positions of ``wanted`` band names within ``available``."""
    available = tuple(available)
    missing = [b for b in wanted if b not in available]
    if missing:
        raise _missing_bands(missing, available)
    return [available.index(b) for b in wanted]


# ---------------------------------------------------------------------------- naming a file's bands
def parse_band_name(text: str | None) -> str | None:
    """``'B02'``, ``'B2'``, ``'b8a'``, ``'B8A (narrow NIR)'`` -> canonical ``'B02'`` / ``'B8A'``."""
    if not text:
        return None
    t = text.strip().upper()
    if not t.startswith("B"):
        return None
    t = t[1:]
    digits = ""
    for ch in t:
        if ch.isdigit():
            digits += ch
        else:
            break
    rest = t[len(digits) :]
    if not digits or int(digits) > 12 or int(digits) == 0:
        return None
    if rest.startswith("A"):
        if int(digits) != 8:
            return None
        rest = rest[1:]
        name = "B8A"
    else:
        name = f"B{int(digits):02d}"
    if rest and rest[0].isalnum():
        return None
    return name


def parse_descriptions(descriptions: Iterable[str | None] | None) -> tuple[str, ...] | None:
    """Band names from a file's band descriptions, or None unless every band has a distinct,
    recognisable Sentinel-2 name."""
    if not descriptions:
        return None
    names = tuple(parse_band_name(d) for d in descriptions)
    if any(n is None for n in names) or len(set(names)) != len(names):
        return None
    return names  # type: ignore[return-value]


def parse_band_order(band_names: Iterable[str] | str | None) -> tuple[str, ...] | None:
    """A user band order (``"B01,B02,...,B8A"`` or a list) -> canonical names, checked."""
    if band_names is None:
        return None
    items = band_names.split(",") if isinstance(band_names, str) else list(band_names)
    items = [s.strip() for s in items if s and s.strip()]
    if not items:
        return None
    names = []
    for s in items:
        n = parse_band_name(s)
        if n is None:
            raise ValueError(f"band order: {s!r} is not a Sentinel-2 band name (B01..B12, B8A)")
        names.append(n)
    if len(set(names)) != len(names):
        raise ValueError("band order: a band is named twice")
    return tuple(names)


def default_band_names(count: int) -> tuple[str, ...]:
    """Band names for a file without descriptions and without a configured order: 13 bands are
    EuroSAT MS, 3 are EuroSAT RGB, anything else is ``band1``, ``band2``..."""
    if count == 13:
        return EUROSAT_MS_ORDER
    if count == 3:
        return EUROSAT_RGB_ORDER
    return tuple(f"band{i + 1}" for i in range(count))


def file_band_names(
    descriptions: Iterable[str | None] | None,
    count: int,
    order: tuple[str, ...] | None = None,
    preset_names: tuple[str, ...] = (),
) -> tuple[tuple[str, ...] | None, str]:
    """(names, source) of a file's bands: the one rule for archive tiles and query tiles alike.

    The file's descriptions win (they travel with the pixels), then the band ``order`` the user
    gave, then the preset's, then :func:`default_band_names`. Names are None when the order that
    applies names another number of bands than ``count``; ``source`` says which applied
    (``file``, ``setting``, ``preset`` or ``default``)."""
    desc = parse_descriptions(descriptions)
    if desc is not None:
        return desc, "file"
    if order:
        return (order, "setting") if len(order) == count else (None, "setting")
    if preset_names:
        return (preset_names, "preset") if len(preset_names) == count else (None, "preset")
    return default_band_names(count), "default"


# Composites users expect (R, G, B band names).
COMPOSITES: dict[str, tuple[str, str, str]] = {
    "True colour": ("B04", "B03", "B02"),
    "False-colour infrared": ("B08", "B04", "B03"),
    "SWIR": ("B12", "B8A", "B04"),
    "Agriculture": ("B11", "B08", "B02"),
    "Atmospheric penetration": ("B12", "B11", "B8A"),
}

# Normalised difference indices: (a - b) / (a + b).
INDICES: dict[str, tuple[str, str]] = {
    "NDVI": ("B08", "B04"),
    "NDWI": ("B03", "B08"),
}
