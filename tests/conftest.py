"""Shared fixtures: a small synthetic archive, a GeoTIFF writer for fake tiles, the real subset."""

from __future__ import annotations

import os
import warnings
import zlib

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Small matrix problems run far slower with BLAS threads fighting over two cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_ARCHIVE = REPO_ROOT / ".." / "shared" / "data" / "eurosat-ms-subset"


@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory) -> Path:
    """A 10-class demo archive in the EuroSAT MS layout, 6 tiles per class, 64x64 pixels."""
    from rsgui.demo import make_demo_archive

    return make_demo_archive(tmp_path_factory.mktemp("demo") / "archive", n_per_class=6)


@pytest.fixture
def write_tile():
    """Factory writing one fake tile; returns its path.

    ``value``: None (reproducible random DNs), a number (every pixel), or an array
    (bands, h, w). ``size``: int or (h, w). ``crs``: True (UTM 31N, 10 m), False, or an EPSG code.
    ``descriptions``: band descriptions to store in the file. ``driver``: GTiff, JPEG, PNG...
    Other keywords are creation options (``interleave="band"``, ``compress="deflate"``...).
    """
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.errors import NotGeoreferencedWarning

    def _write(
        path,
        bands: int = 13,
        size: int | tuple[int, int] = 64,
        dtype: str = "uint16",
        value=None,
        crs: bool | int = True,
        descriptions=None,
        driver: str = "GTiff",
        origin: tuple[float, float] = (500_000.0, 5_000_000.0),
        **creation,
    ) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        h, w = (size, size) if isinstance(size, int) else size
        if value is None:
            rng = np.random.default_rng(zlib.crc32(path.name.encode()))
            hi = 255 if dtype == "uint8" else 4095
            data = rng.integers(0, hi, size=(bands, h, w)).astype(dtype)
        elif np.isscalar(value):
            data = np.full((bands, h, w), value, dtype=dtype)
        else:
            data = np.asarray(value).astype(dtype)
            bands, h, w = data.shape
        profile = {"driver": driver, "dtype": dtype, "count": bands, "height": h, "width": w}
        profile.update(creation)
        if crs:
            epsg = 32631 if crs is True else int(crs)
            profile.update(
                crs=CRS.from_epsg(epsg),
                transform=Affine(10.0, 0.0, origin[0], 0.0, -10.0, origin[1]),
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # crs=False on purpose
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as dst:
                dst.write(data)
                if descriptions is not None:
                    for i, d in enumerate(descriptions, start=1):
                        dst.set_band_description(i, d)
        return path

    return _write


def held_out(labels: np.ndarray, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(queries, archive part): ``per_class`` random tiles of every class held out of training."""
    rng = np.random.default_rng(seed)
    q = [
        rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)
    ]
    q = np.sort(np.concatenate(q))
    return q, np.setdiff1d(np.arange(len(labels)), q)


@pytest.fixture
def real_archive() -> Path:
    """The 311-tile real EuroSAT MS subset beside the repository, or skip when absent."""
    if not REAL_ARCHIVE.is_dir():
        pytest.skip("real data ../shared/data/eurosat-ms-subset not present")
    return REAL_ARCHIVE.resolve()


@pytest.fixture
def light_uahm(monkeypatch):
    """The quick UAHM preset with a tiny network and a histogram-only similarity matrix (no
    Inception in unit tests): a model trains in seconds."""
    import training.train_uahm as tu

    real = tu.preset_config

    def light(*a, **kw):
        model, s, ssm = real(*a, **kw)
        model.width, model.hidden, ssm.features = 0.125, 32, "local"
        return model, s, ssm

    monkeypatch.setattr(tu, "preset_config", light)
