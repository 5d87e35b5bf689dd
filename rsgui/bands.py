"""Sentinel-2 band names, band sets, archive presets and composites.

Bands are always named (``"B02"``, ``"B8A"``), never addressed by position alone: the position of a
band in a file depends on the archive (EuroSAT MS puts B8A last), so every lookup goes through
:func:`band_indices`.
"""

from __future__ import annotations

from dataclasses import dataclass

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


class MissingBandsError(ValueError):
    """The archive or file lacks bands that a band set or composite needs."""

    def __init__(self, missing: list[str], available: tuple[str, ...]):
        self.missing = missing
        self.available = available
        super().__init__(
            f"missing band(s) {', '.join(missing)}; available: {', '.join(available) or 'none'}"
        )


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


def band_indices(available: tuple[str, ...] | list[str], wanted: tuple[str, ...] | list[str]):
    """Positions of ``wanted`` band names within ``available``."""
    available = tuple(available)
    missing = [b for b in wanted if b not in available]
    if missing:
        raise MissingBandsError(missing, available)
    return [available.index(b) for b in wanted]


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
