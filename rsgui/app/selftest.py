"""``rsgui --self-test``: prove that an installation (or a bundle) works end to end, offscreen.

A bundle can build cleanly and still miss a Qt platform plugin, the GDAL/PROJ data or a module
that is only imported lazily; this runs the real path a user takes, without a display: open the
demo archive, read its georeferencing, index it with the training-free ``spectral`` method, save
and reload the index, query it and check the ranking, run torch (one optimiser step, as training
does) and safetensors, run the offline Inception weights when installed, draw a plot, show the
main window and grab it to a PNG.

Each step prints one line ``self-test: <what> ... ok (0.4 s)``; the first failure prints
``self-test: <what> ... FAILED (0.1 s): <reason>`` (traceback on stderr) and :func:`run` returns 1.
Everything is written in a temporary folder (``RSGUI_SELFTEST_DIR`` names a folder to keep
instead); the user's settings and data folders are redirected there, so a self-test never
touches them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

N_PER_CLASS = 6  # demo archive: 10 classes x 6 tiles, small enough to index in well under a second
BITS = 64
TOP_K = 5
MIN_SAME_CLASS = 0.6  # mean fraction of the top 5 (query included) in the query's class
WINDOW_SIZE = (1280, 800)


class SelfTestError(RuntimeError):
    """A check failed; the message is the line the user sees."""


@dataclass
class Context:
    """What the steps hand on to each other."""

    workdir: Path
    app: object | None = None
    archive: object | None = None
    index: object | None = None
    facts: dict = field(default_factory=dict)


def _say(line: str, stream=None) -> None:
    stream = stream or sys.stdout or sys.__stdout__
    if stream is not None:  # a windowed build on some platforms has no console at all
        print(line, file=stream, flush=True)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise SelfTestError(message)


# -- steps ---------------------------------------------------------------------------------------


def step_qt(ctx: Context) -> str:
    from PySide6.QtWidgets import QApplication

    _quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "rsgui"])
    try:  # the same names as the application's, for anything keyed on them
        from rsgui.app.settings import APPLICATION, ORGANISATION

        app.setOrganizationName(ORGANISATION)
        app.setApplicationName(APPLICATION)
    except ImportError:
        pass
    ctx.app = app
    platform = QApplication.platformName()
    _check(bool(platform), "Qt started without a platform plugin")
    return f"Qt {_qt_version()} on the {platform!r} platform"


def step_demo_archive(ctx: Context) -> str:
    from rsgui.archive import Archive
    from rsgui.demo import make_demo_archive

    root = make_demo_archive(ctx.workdir / "demo-archive", n_per_class=N_PER_CLASS)
    archive = Archive.open(root, use_cache=False)
    ctx.archive = archive
    n, classes = len(archive), len(archive.classes)
    _check(n > 0, f"the demo archive at {root} has no readable tiles")
    _check(not archive.problems, f"the demo archive has unreadable tiles: {archive.problems[:3]}")
    _check(classes >= 2, f"the demo archive has {classes} classes, expected several")
    return f"demo archive {n} tiles, {classes} classes, {len(archive.band_names)} bands"


def step_georef(ctx: Context) -> str:
    """GDAL reads the CRS and PROJ turns it into longitude/latitude: both need their data files."""
    import rasterio
    from rasterio.warp import transform

    record = ctx.archive.records[0]
    path = Path(ctx.archive.root) / record.path
    with rasterio.open(path) as ds:
        crs, bounds = ds.crs, ds.bounds
        _check(crs is not None, f"{path.name}: no CRS read (GDAL data missing?)")
        x, y = (bounds.left + bounds.right) / 2, (bounds.bottom + bounds.top) / 2
    lon, lat = transform(crs, "EPSG:4326", [x], [y])
    lon, lat = float(lon[0]), float(lat[0])
    _check(-180 <= lon <= 180 and -90 <= lat <= 90, f"{path.name}: bad lon/lat {lon}, {lat}")
    epsg = crs.to_epsg()
    name = f"EPSG:{epsg}" if epsg else crs.to_string()[:40]
    return f"GeoTIFF {name} -> lon/lat ({lon:.3f}, {lat:.3f}) with GDAL {rasterio.__gdal_version__}"


def step_index(ctx: Context) -> str:
    from rsgui.index_store import HashIndex
    from rsgui.progress import drive
    from rsgui.services.indexing import index_job

    out = ctx.workdir / "demo-index"
    built = drive(index_job(ctx.archive, "spectral", out, bands="ms10", bits=BITS))
    index = built.index
    _check(
        len(index) == len(ctx.archive), f"index has {len(index)} codes for {len(ctx.archive)} tiles"
    )
    ctx.index = HashIndex.load(built.path)
    _check(len(ctx.index) == len(index), "the reloaded index differs in size")
    path = built.path
    size = sum(p.stat().st_size for p in Path(path).parent.glob(Path(path).stem + ".*"))
    return (
        f"spectral index {len(index)} x {index.meta.bits} bits, saved and reloaded "
        f"({size / 1024:.0f} kB)"
    )


def step_query(ctx: Context) -> str:
    """One query file per class (a copy of its first tile, kept outside the archive as a user's
    file would be), searched as the app does: the archive tile it copies at rank 1 with distance
    0, most of the top 5 from its class."""
    import shutil

    from rsgui.services import search as search_service

    archive, index = ctx.archive, ctx.index
    firsts: dict[str, int] = {}
    for rec in archive.records:
        firsts.setdefault(rec.label, rec.index)
    queries = [archive.records[i] for i in firsts.values()]
    paths = []
    for rec in queries:
        copy = Path(ctx.workdir) / "queries" / rec.path
        if not copy.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(archive.root) / rec.path, copy)
        paths.append(str(copy))
    same = 0
    for q, rec in zip(paths, queries, strict=True):
        top = sorted(search_service.search(index, q, TOP_K).rows, key=lambda r: r.rank)
        _check(len(top) == TOP_K, f"query {rec.path}: {len(top)} results, expected {TOP_K}")
        first = top[0]
        twin = (Path(archive.root) / rec.path).resolve()
        _check(
            first.rank == 1 and Path(first.path).resolve() == twin and first.distance == 0,
            f"query {rec.path}: rank 1 is {first.path} at distance {first.distance}, "
            "expected the query itself at distance 0",
        )
        same += sum(r.label == rec.label for r in top)
    total = len(queries) * TOP_K
    _check(
        same / total >= MIN_SAME_CLASS,
        f"only {same}/{total} of the top-{TOP_K} results share the query's class "
        f"(expected at least {MIN_SAME_CLASS:.0%})",
    )
    return (
        f"query {len(queries)} tiles (one per class): itself at rank 1, distance 0; "
        f"top-{TOP_K} same class {same}/{total}"
    )


def step_hamming(ctx: Context) -> str:
    """The exact top-k search against brute force, with every backend this build has (numba
    compiles at run time, which a frozen application may not manage: then it must say so)."""
    import numpy as np

    from rsgui import hamming

    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, size=(3000, 8), dtype=np.uint8)
    queries = db[[0, 7, 2999]] ^ rng.integers(0, 2, size=(3, 8), dtype=np.uint8)
    full = np.unpackbits(db[None] ^ queries[:, None], axis=2).sum(axis=2)  # (Q, N)
    want = np.argsort(full, axis=1, kind="stable")[:, :10]
    backends = ["numpy"] + (["numba"] if hamming.numba_available() else [])
    for backend in backends:
        idx, dist = hamming.hamming_topk(db, queries, 10, backend=backend)
        _check(
            np.array_equal(idx, want) and np.array_equal(dist, np.take_along_axis(full, want, 1)),
            f"the {backend} Hamming search disagrees with brute force",
        )
    return f"Hamming top-k exact with {' and '.join(backends)}"


def step_torch(ctx: Context) -> str:
    """Training needs autograd, an optimiser (which imports torch's compiler stack) and
    safetensors; a bundle that trimmed too much fails here rather than in a user's training run."""
    import torch
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(13, 4, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss = net(torch.randn(2, 13, 16, 16)).pow(2).mean()
    loss.backward()
    opt.step()
    path = ctx.workdir / "selftest.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    back = load_file(str(path))
    _check(
        all(torch.equal(back[k], v) for k, v in net.state_dict().items()),
        "safetensors round trip changed the weights",
    )
    return f"torch {torch.__version__} (one optimiser step) + safetensors round trip"


def step_inception(ctx: Context) -> str:
    """Training ``uahm``/``deephash`` needs the offline Inception v3 weights (optional package):
    when present they must load and run (TorchScript in a bundle); when absent, say so."""
    try:
        from rsgui.errors import BackboneUnavailable
        from training.inception import default_weights_path, load_inception
    except ImportError:
        return "training modules not installed, Inception check skipped"
    import torch

    try:
        path = default_weights_path()
    except BackboneUnavailable:
        return "offline Inception v3 weights not installed (needed to train uahm/deephash), skipped"
    model = load_inception(path, input_size=75)
    feats = model(torch.rand(1, 3, 64, 64))
    _check(tuple(feats.shape) == (1, 2048), f"Inception gave features shaped {tuple(feats.shape)}")
    _check(bool(torch.isfinite(feats).all()), "Inception gave non-finite features")
    return f"offline Inception v3 weights load and run ({path.stat().st_size / 2**20:.0f} MB)"


def step_plot(ctx: Context) -> str:
    """Figures are exported with matplotlib's Agg backend (fonts and matplotlibrc must be there)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 0.5, 1], [1, 0.7, 0.2])
    ax.set_xlabel("recall")
    path = ctx.workdir / "selftest-plot.png"
    fig.savefig(path, dpi=50)
    _check(path.stat().st_size > 0, "matplotlib wrote an empty PNG")
    return f"plot drawn with matplotlib Agg ({path.stat().st_size / 1024:.0f} kB PNG)"


def step_window(ctx: Context) -> str:
    """Show the main window (if this build has one) and grab it: proves the Qt plugins."""
    import importlib
    import importlib.util

    from PySide6.QtCore import QCoreApplication, QEventLoop

    if importlib.util.find_spec("rsgui.app.main_window") is None:
        return "no main window in this build, skipped"
    module = importlib.import_module("rsgui.app.main_window")
    cls = getattr(module, "MainWindow", None)
    _check(cls is not None, "rsgui.app.main_window has no MainWindow")
    window = cls()
    try:
        window.resize(*WINDOW_SIZE)
        window.show()
        deadline = time.monotonic() + 5.0
        while not window.windowHandle() or not window.windowHandle().isExposed():
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            _check(time.monotonic() < deadline, "the main window was not shown within 5 s")
        QCoreApplication.processEvents()
        # the window icon is an SVG from resources/: proves both the folder and Qt's SVG plugin
        _check(
            not window.windowIcon().pixmap(32, 32).isNull(),
            "the window icon is missing (resources/ folder or Qt's SVG icon plugin not found)",
        )
        pixmap = window.grab()
        _check(not pixmap.isNull(), "grabbing the main window gave an empty image")
        path = ctx.workdir / "selftest-window.png"
        _check(pixmap.save(str(path), "PNG"), f"could not write {path.name} (PNG plugin missing?)")
        size = f"{pixmap.width()}x{pixmap.height()}"
    finally:
        window.close()
        window.deleteLater()
        QCoreApplication.processEvents()
    return f"main window shown with its icon and grabbed ({size} PNG)"


STEPS: list[tuple[str, Callable[[Context], str]]] = [
    ("Qt offscreen", step_qt),
    ("demo archive", step_demo_archive),
    ("georeferencing (GDAL + PROJ)", step_georef),
    ("spectral index", step_index),
    ("query ranking", step_query),
    ("Hamming search", step_hamming),
    ("torch + safetensors", step_torch),
    ("Inception weights", step_inception),
    ("plotting", step_plot),
    ("main window", step_window),
]


# -- driver --------------------------------------------------------------------------------------


def run(workdir: str | Path | None = None) -> int:
    """Run every step; 0 when all pass, 1 at the first failure (later steps depend on it)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    keep = workdir or os.environ.get("RSGUI_SELFTEST_DIR")
    tmp = None if keep else tempfile.TemporaryDirectory(prefix="rsgui-selftest-")
    root = Path(keep) if keep else Path(tmp.name)
    saved = {k: os.environ.get(k) for k in _USER_DIR_VARS}
    try:
        root.mkdir(parents=True, exist_ok=True)
        _isolate_user_folders(root)
        ctx = Context(workdir=root)
        return _run_steps(ctx, keep=bool(keep))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if tmp is not None:
            try:
                tmp.cleanup()
            except OSError:
                pass


def _run_steps(ctx: Context, keep: bool) -> int:
    start = time.perf_counter()
    where = f"{sys.executable}" + (" (bundle)" if getattr(sys, "frozen", False) else "")
    _say(f"self-test: rsgui {_version()} on Python {sys.version.split()[0]}, {where}")
    for label, fn in STEPS:
        t0 = time.perf_counter()
        try:
            detail = fn(ctx)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear line
            dt = time.perf_counter() - t0
            reason = str(exc) if isinstance(exc, SelfTestError) else f"{type(exc).__name__}: {exc}"
            _say(f"self-test: {label} ... FAILED ({dt:.1f} s): {reason}")
            if not isinstance(exc, SelfTestError):
                traceback.print_exc(file=sys.stderr or sys.__stderr__)
            _say(f"self-test: FAILED at step '{label}'")
            return 1
        _say(f"self-test: {detail} ... ok ({time.perf_counter() - t0:.1f} s)")
    kept = f"; files kept in {ctx.workdir}" if keep else ""
    _say(f"self-test: all {len(STEPS)} steps passed in {time.perf_counter() - start:.1f} s{kept}")
    return 0


_USER_DIR_VARS = ("RSGUI_DATA_DIR", "RSGUI_CACHE_DIR")


def _isolate_user_folders(root: Path) -> None:
    """Point settings and per-user folders into ``root``: a self-test leaves no trace."""
    for var in _USER_DIR_VARS:
        os.environ[var] = str(root / var.lower())
    _isolate_settings(root)


def _isolate_settings(root: Path) -> None:
    from PySide6.QtCore import QSettings

    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(root / "settings"))


def _quiet_offscreen_warnings() -> None:
    """The offscreen platform warns that it ignores window size hints; that is expected here."""
    from PySide6.QtCore import qInstallMessageHandler

    previous = None

    def handler(mode, context, message):
        if "propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            print(message, file=sys.stderr or sys.__stderr__)

    previous = qInstallMessageHandler(handler)


def _qt_version() -> str:
    from PySide6.QtCore import qVersion

    return qVersion()


def _version() -> str:
    try:
        from rsgui import __version__

        return str(__version__)
    except ImportError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(run())
