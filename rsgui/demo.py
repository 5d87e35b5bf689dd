"""A small synthetic archive in the EuroSAT MS layout, for trying the application and for tests.

Each class mixes a few surface types (water, forest, crop, soil, grass, roof, asphalt) with its own
texture, so classes differ both in spectrum and in spatial pattern, as real land-cover tiles do.
Values are digital numbers like EuroSAT's (0..4095) in the EuroSAT MS band order (B8A last).
Tiles are written by :func:`rsgui.geotiff.write_geotiff` as plain uncompressed, pixel-interleaved
GeoTIFFs without band descriptions, as EuroSAT's are, so they take the fast header path.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from rsgui.bands import EUROSAT_MS_ORDER, S2_BANDS
from rsgui.geotiff import write_geotiff

CLASSES: tuple[str, ...] = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)  # fmt: skip

# Surface spectra in canonical S2 order B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B10 B11 B12.
_SURFACES_S2: dict[str, tuple[int, ...]] = {
    "water":   (1250, 1000,  800,  560,  500,  460,  440,  400,  380, 150,  8,  160,  110),
    "forest":  (1250,  950,  850,  600,  950, 2100, 2600, 2500, 2800, 900, 12, 1500,  750),
    "crop":    (1300, 1050, 1050,  800, 1300, 2500, 3000, 2900, 3200, 950, 13, 1900, 1100),
    "soil":    (1400, 1300, 1350, 1500, 1700, 1950, 2100, 2150, 2300, 800, 14, 2700, 2100),
    "grass":   (1300, 1050, 1000,  850, 1200, 2300, 2750, 2700, 2950, 900, 12, 1900, 1050),
    "roof":    (1650, 1550, 1550, 1650, 1800, 1950, 2050, 2100, 2200, 650, 14, 2500, 2200),
    "asphalt": (1450, 1250, 1200, 1250, 1300, 1450, 1500, 1550, 1600, 550, 12, 1900, 1700),
}  # fmt: skip
_FILE_ORDER = [S2_BANDS.index(b) for b in EUROSAT_MS_ORDER]
SURFACES: dict[str, np.ndarray] = {
    k: np.asarray(v, dtype=np.float32)[_FILE_ORDER] for k, v in _SURFACES_S2.items()
}
MARKER = ".rsgui-demo.json"


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Blobby noise in [0, 1] with feature size ``scale`` pixels (Fourier low-pass)."""
    f = np.fft.fftfreq(size)
    r2 = f[:, None] ** 2 + f[None, :] ** 2
    spec = np.fft.fft2(rng.standard_normal((size, size))) * np.exp(-r2 * (scale**2) * 20)
    n = np.real(np.fft.ifft2(spec))
    n -= n.min()
    return n / (n.max() + 1e-9)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return y, x


def _rot(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates rotated by a random angle (u along, v across)."""
    y, x = _grid(size)
    a = rng.uniform(0, np.pi)
    return x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)


def _rects(rng, size, n, lo, hi) -> np.ndarray:
    m = np.zeros((size, size), np.float32)
    for _ in range(n):
        h, w = rng.integers(lo, hi + 1, size=2)
        y0, x0 = rng.integers(-h // 2, size, size=2)
        m[max(y0, 0) : y0 + h, max(x0, 0) : x0 + w] = 1.0
    return m


def _fractions(cls: str, rng: np.random.Generator, s: int) -> dict[str, np.ndarray]:
    """Per-pixel fractions of each surface for one tile of class ``cls``."""
    y, x = _grid(s)
    if cls == "AnnualCrop":
        u, v = _rot(rng, s)
        period = rng.uniform(5, 10)
        stripes = (np.sin(2 * np.pi * v / period) > rng.uniform(-0.3, 0.3)).astype(np.float32)
        parcel = (u > rng.uniform(-s / 2, s)).astype(np.float32)
        crop = np.where(parcel > 0, stripes, 1 - stripes) * 0.85
        return {"crop": crop, "soil": 1 - crop}
    if cls == "Forest":
        canopy = 0.6 + 0.4 * _smooth_noise(rng, s, 2)
        return {"forest": canopy, "water": (1 - canopy) * 0.5, "grass": (1 - canopy) * 0.5}
    if cls == "HerbaceousVegetation":
        n = _smooth_noise(rng, s, 10)
        trees = np.clip((n - 0.6) * 3, 0, 1)
        soil = np.clip((0.35 - n) * 2, 0, 1) * 0.6
        return {"forest": trees, "soil": soil, "grass": 1 - trees - soil}
    if cls == "Highway":
        u, v = _rot(rng, s)
        v0 = rng.uniform(-s / 3, s / 3) + (v.max() + v.min()) / 2
        road = (np.abs(v - v0) < rng.uniform(1.5, 3.0)).astype(np.float32)
        field = _smooth_noise(rng, s, 12)
        rest = 1 - road
        return {"asphalt": road, "grass": rest * field, "crop": rest * (1 - field) * 0.6,
                "soil": rest * (1 - field) * 0.4}  # fmt: skip
    if cls == "Industrial":
        roofs = np.clip(_rects(rng, s, 6, 10, 24), 0, 1)
        return {"roof": roofs, "asphalt": (1 - roofs) * 0.8, "grass": (1 - roofs) * 0.2}
    if cls == "Pasture":
        g = 0.85 + 0.15 * _smooth_noise(rng, s, 16)
        return {"grass": g, "soil": 1 - g}
    if cls == "PermanentCrop":
        p = rng.uniform(4, 6)
        u, v = _rot(rng, s)
        trees = ((np.sin(2 * np.pi * u / p) > 0.2) & (np.sin(2 * np.pi * v / p) > 0.2)) * 0.8
        trees = trees.astype(np.float32)
        return {"forest": trees, "soil": (1 - trees) * 0.6, "grass": (1 - trees) * 0.4}
    if cls == "Residential":
        roofs = np.clip(_rects(rng, s, 40, 2, 5), 0, 1)
        u, v = _rot(rng, s)
        streets = (np.abs(np.sin(np.pi * v / 12)) < 0.12).astype(np.float32) * (1 - roofs)
        rest = 1 - roofs - streets
        return {"roof": roofs, "asphalt": streets, "grass": rest * 0.6, "forest": rest * 0.4}
    if cls == "River":
        amp, per, ph = rng.uniform(3, 10), rng.uniform(30, 80), rng.uniform(0, 2 * np.pi)
        centre = s / 2 + rng.uniform(-s / 6, s / 6) + amp * np.sin(2 * np.pi * x / per + ph)
        width = rng.uniform(4, 8)
        water = np.clip(width - np.abs(y - centre), 0, 1)
        if rng.random() < 0.5:
            water = water.T
        veg = _smooth_noise(rng, s, 8)
        rest = 1 - water
        return {"water": water, "forest": rest * veg, "grass": rest * (1 - veg)}
    if cls == "SeaLake":
        w = np.ones((s, s), np.float32)
        if rng.random() < 0.3:
            u, v = _rot(rng, s)
            w = np.clip((v - v.min()) / 3 - rng.uniform(0, s / 8), 0, 1)
        return {"water": w, "grass": (1 - w) * 0.5, "soil": (1 - w) * 0.5}
    raise ValueError(f"unknown class {cls!r}")


def make_tile(cls: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One (13, size, size) uint16 tile of class ``cls`` in EuroSAT MS band order."""
    fr = _fractions(cls, rng, size)
    img = np.zeros((13, size, size), dtype=np.float32)
    for surf, f in fr.items():
        img += SURFACES[surf][:, None, None] * f[None]
    gain = rng.uniform(0.9, 1.1, size=(13, 1, 1)).astype(np.float32)  # season / illumination
    img *= gain
    img += rng.normal(0, 1, size=img.shape).astype(np.float32) * (0.02 * img + 8)
    return np.clip(np.rint(img), 0, 4095).astype(np.uint16)


def tile_transform(k: int, size: int, rng: np.random.Generator):
    """(EPSG code, Affine) of tile number ``k``: UTM zones 31..34 N, 10 m pixels."""
    from affine import Affine

    epsg = 32631 + (k % 4)
    x0 = 300_000 + 10 * size * (k % 97) + float(rng.integers(0, 50)) * 10
    y0 = 5_000_000 + 10 * size * (k // 97) + float(rng.integers(0, 50)) * 10
    return epsg, Affine(10.0, 0.0, x0, 0.0, -10.0, y0)


def _demo_files(settings: dict) -> list[str]:
    """The files (relative paths) a demo archive made with ``settings`` holds, marker aside."""
    n = int(settings.get("n_per_class", 0))
    return [f"{cls}/{cls}_{k}.tif" for cls in CLASSES for k in range(1, n + 1)]


def _read_marker(marker: Path) -> dict | None:
    """The settings and file list of a demo archive, None when ``marker`` is not one of ours.
    Markers of version 1 list no files: theirs are the names those settings make."""
    try:
        previous = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(previous, dict) or "n_per_class" not in previous:
        return None
    files = previous.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        files = _demo_files(previous)
    previous["files"] = [f for f in files if _plain_rel(f)]
    return previous


def _plain_rel(rel: str) -> bool:
    """A relative path of the demo layout (CLASS/NAME.tif): nothing a marker says leads out."""
    parts = rel.split("/")
    return len(parts) == 2 and all(p and p not in (".", "..") and "\\" not in p for p in parts)


def make_demo_archive(
    root: str | os.PathLike, n_per_class: int = 20, size: int = 64, seed: int = 0
) -> Path:
    """Create (or reuse, when made with the same settings) a demo archive at ``root``.

    A new archive is built in a temporary folder beside ``root`` and renamed into place, so an
    interrupted run never leaves a partial archive. A demo archive made with other settings is
    remade in place: only the files its marker (``.rsgui-demo.json``) lists are replaced or
    removed; any other file in the folder is the user's and stays. A non-empty folder without a
    marker is refused."""
    import rasterio

    root = Path(root).expanduser().resolve()
    settings = {"n_per_class": n_per_class, "size": size, "seed": seed, "version": 2}
    marker = root / MARKER
    previous = None
    if root.exists():
        if not root.is_dir():
            raise FileExistsError(f"{root}: exists and is not a folder")
        previous = _read_marker(marker)
        if previous is not None and previous.get("complete", True):
            same = {k: previous.get(k) for k in ("n_per_class", "size", "seed")}
            if same == {k: settings[k] for k in same} and all(
                (root / f).is_file() for f in _demo_files(settings)
            ):
                return root
        if previous is None and any(root.iterdir()):
            raise FileExistsError(f"{root}: folder exists and is not empty nor a demo archive")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    new_files = _demo_files(settings)
    try:
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            k = 0
            for ci, cls in enumerate(CLASSES):
                (tmp / cls).mkdir()
                for n in range(1, n_per_class + 1):
                    rng = np.random.default_rng([seed, ci, n])
                    data = make_tile(cls, rng, size)
                    epsg, tr = tile_transform(k, size, rng)
                    write_geotiff(tmp / cls / f"{cls}_{n}.tif", data, crs=epsg, transform=tr)
                    k += 1
        done = {**settings, "files": new_files}
        if previous is None:
            (tmp / MARKER).write_text(json.dumps(done))
            if root.exists():
                root.rmdir()  # an empty folder: nothing of the user's in it
            os.replace(tmp, root)
        else:
            _replace_in_place(root, tmp, previous["files"], new_files, settings, done)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _replace_in_place(root, tmp, old_files, new_files, settings, done) -> None:
    """Swap the tiles of a demo archive for those built in ``tmp``, touching only files the
    program made. The marker lists both sets while this runs, so an interrupted swap is finished
    by the next run instead of leaving files no marker names."""
    ours = set(old_files)
    clash = [f for f in new_files if f not in ours and os.path.lexists(root / f)]
    if clash:
        raise FileExistsError(
            f"{root / clash[0]}: a file the demo archive did not make is in the way; "
            "move it or choose another folder"
        )
    marker = root / MARKER
    both = sorted(ours | set(new_files))
    marker.write_text(json.dumps({**settings, "files": both, "complete": False}))
    for rel in new_files:
        (root / rel).parent.mkdir(exist_ok=True)
        os.replace(tmp / rel, root / rel)
    keep = set(new_files)
    for rel in old_files:
        if rel not in keep:
            p = root / rel
            if p.is_file() and not p.is_symlink():
                p.unlink()
            try:
                p.parent.rmdir()  # a class folder left empty; kept when it holds anything else
            except OSError:
                pass
    marker.write_text(json.dumps(done))
