"""Virtualised thumbnail grids: a list model that renders icons lazily in a worker and caches them.

Nothing is rendered upfront: the view asks :meth:`TileListModel.data` only for the rows it shows,
the model queues those tiles (newest request first, so a fast scroll renders where the user looks),
one background thread renders them with the current composite, and finished images arrive by a
queued signal into an LRU cache. This scales to archives of tens of thousands of tiles.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QThread,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from rsgui.app.models import Composite, ReferenceSample, elide_name
from rsgui.app.render import render_safe

log = logging.getLogger(__name__)

TILE_MIME = "application/x-rsgui-tile"  # payload: JSON {"archive_root", "index", "path"}
BorderRole = Qt.ItemDataRole.UserRole + 1  # QColor or None
IndexRole = Qt.ItemDataRole.UserRole + 2  # archive index (int) or None
PathRole = Qt.ItemDataRole.UserRole + 3  # absolute path (str)
ElidePrefixRole = Qt.ItemDataRole.UserRole + 4  # part of the title shortened first (its class)
THUMB = 96

Loader = Callable[[], tuple[np.ndarray, tuple[str, ...]]]


def numpy_to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 -> QImage that owns its memory (safe to pass across threads)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class _RenderThread(QThread):
    """Renders queued tiles one at a time; newest request first; drops stale generations."""

    rendered = Signal(object, int, QImage)  # key, generation, image
    failed = Signal(object, int, str)
    dropped = Signal(object, int)  # key, generation: fell off the queue, may be asked again

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[tuple] = deque()
        self._cond = threading.Condition()
        self._stop = False

    def submit(
        self, key: Hashable, gen: int, loader: Loader, comp: Composite, ref, size: int
    ) -> None:
        with self._cond:
            self._queue.append((key, gen, loader, comp, ref, size))
            while len(self._queue) > 400:  # far off-screen requests are dropped, re-asked later
                old = self._queue.popleft()
                self.dropped.emit(old[0], old[1])
            self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._queue.clear()
            self._cond.notify()
        self.wait(3000)

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                key, gen, loader, comp, ref, size = self._queue.pop()
            try:
                raw, band_names = loader()
                img = numpy_to_qimage(render_safe(raw, band_names, comp, ref))
                if img.width() != size:
                    img = img.scaled(
                        size, size, Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.FastTransformation,
                    )  # fmt: skip
                self.rendered.emit(key, gen, img)
            except Exception as exc:  # a bad tile must not stop the others
                log.debug("thumbnail %s failed", key, exc_info=True)
                self.failed.emit(key, gen, str(exc))
            self.msleep(0)


class ThumbnailCache(QObject):
    """LRU cache of rendered thumbnails plus the worker that fills it.

    ``request(key, loader)`` returns the cached pixmap or ``None`` and queues a render;
    ``ready(key)`` fires when it is in. ``set_composite`` invalidates everything.
    """

    ready = Signal(object)
    invalidated = Signal()

    def __init__(self, capacity: int = 3000, size: int = THUMB, parent: QObject | None = None):
        super().__init__(parent)
        self.capacity = capacity
        self.size = size
        self.composite = Composite()
        self.reference: ReferenceSample | None = None
        self._cache: OrderedDict[Hashable, QPixmap] = OrderedDict()
        self._pending: set[Hashable] = set()
        self._failed: set[Hashable] = set()
        self._generation = 0
        self.rendered_count = 0
        self._thread = _RenderThread(self)
        self._thread.rendered.connect(self._on_rendered)
        self._thread.failed.connect(self._on_failed)
        self._thread.dropped.connect(self._on_dropped)
        self._thread.start(QThread.Priority.LowPriority)
        _LIVE.add(self)

    def set_composite(self, composite: Composite) -> None:
        if composite != self.composite:
            self.composite = composite
            self.invalidate()

    def set_reference(self, reference: ReferenceSample | None) -> None:
        if reference is not self.reference:
            self.reference = reference
            self.invalidate()

    def invalidate(self) -> None:
        self._generation += 1
        self._cache.clear()
        self._pending.clear()
        self._failed.clear()
        self._thread.clear()
        self.invalidated.emit()

    def get(self, key: Hashable) -> QPixmap | None:
        pix = self._cache.get(key)
        if pix is not None:
            self._cache.move_to_end(key)
        return pix

    def request(self, key: Hashable, loader: Loader) -> QPixmap | None:
        pix = self.get(key)
        if pix is None and key not in self._pending and key not in self._failed:
            self._pending.add(key)
            self._thread.submit(
                key, self._generation, loader, self.composite, self.reference, self.size
            )
        return pix

    def is_pending(self) -> bool:
        return bool(self._pending)

    def _on_rendered(self, key: Hashable, gen: int, img: QImage) -> None:
        if gen != self._generation:
            return
        self._pending.discard(key)
        self._cache[key] = QPixmap.fromImage(img)
        self.rendered_count += 1
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(key)

    def _on_failed(self, key: Hashable, gen: int, reason: str) -> None:
        if gen == self._generation:
            self._pending.discard(key)
            self._failed.add(key)

    def _on_dropped(self, key: Hashable, gen: int) -> None:
        if gen == self._generation:
            self._pending.discard(key)

    def shutdown(self) -> None:
        self._thread.stop()
        _LIVE.discard(self)


_LIVE: weakref.WeakSet[ThumbnailCache] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Stop render threads before Python tears Qt down (no 'destroyed while running')."""
    for cache in list(_LIVE):
        try:
            cache.shutdown()
        except RuntimeError:  # the C++ object is already gone
            pass


@dataclass
class TileItem:
    """One cell of a grid: what to draw, and how to load its pixels."""

    key: Hashable
    title: str
    subtitle: str = ""
    archive_index: int | None = None
    path: str = ""
    border: QColor | None = None
    tooltip: str = ""
    elide_prefix: str = ""  # shortened first when the title does not fit (see elide_name)


class TileListModel(QAbstractListModel):
    """Rows of :class:`TileItem`; icons come from a shared :class:`ThumbnailCache`."""

    def __init__(
        self, cache: ThumbnailCache, loader_for: Callable[[TileItem], Loader], parent=None
    ):
        super().__init__(parent)
        self.cache = cache
        self.loader_for = loader_for
        self.items: list[TileItem] = []
        self._row_of: dict[Hashable, int] = {}
        self.archive_root: str = ""
        cache.ready.connect(self._on_ready)
        cache.invalidated.connect(self._on_invalidated)

    def set_items(self, items: list[TileItem]) -> None:
        self.beginResetModel()
        self.items = items
        self._row_of = {it.key: r for r, it in enumerate(items)}
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.title
        if role == Qt.ItemDataRole.DecorationRole:
            return self.cache.request(item.key, self.loader_for(item))
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.tooltip or item.path
        if role == BorderRole:
            return item.border
        if role == IndexRole:
            return item.archive_index
        if role == PathRole:
            return item.path
        if role == ElidePrefixRole:
            return item.elide_prefix
        if role == Qt.ItemDataRole.UserRole:
            return item.subtitle
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return [TILE_MIME, "text/uri-list"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        rows = [i.row() for i in indexes if i.isValid()]
        item = self.items[rows[0]] if rows else None
        return tile_mime(item.path, item.archive_index, self.archive_root) if item else QMimeData()

    def _on_invalidated(self) -> None:
        if self.items:  # the view asks again for the rows it shows
            self.dataChanged.emit(
                self.index(0), self.index(len(self.items) - 1), [Qt.ItemDataRole.DecorationRole]
            )

    def _on_ready(self, key: Hashable) -> None:
        row = self._row_of.get(key)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


def tile_mime(path: str, archive_index: int | None, archive_root: str = "") -> QMimeData:
    """Drag payload of a tile: the custom type (archive index) plus a file URL for other apps."""
    import json

    from PySide6.QtCore import QUrl

    mime = QMimeData()
    payload = {"archive_root": archive_root, "index": archive_index, "path": path}
    mime.setData(TILE_MIME, json.dumps(payload).encode("utf-8"))
    if path:
        mime.setUrls([QUrl.fromLocalFile(path)])
    return mime


def parse_tile_mime(mime: QMimeData) -> tuple[str | None, int | None, str]:
    """``(path, archive_index, archive_root)`` from a drop: our own type first, then file URLs."""
    import json

    if mime.hasFormat(TILE_MIME):
        try:
            d = json.loads(bytes(mime.data(TILE_MIME).data()).decode("utf-8"))
            idx = d.get("index")
            return (
                d.get("path") or None,
                (int(idx) if idx is not None else None),
                d.get("archive_root", ""),
            )
        except (ValueError, TypeError, AttributeError):
            pass
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile():
                return url.toLocalFile(), None, ""
    return None, None, ""


class TileDelegate(QStyledItemDelegate):
    """Thumbnail, caption lines and an optional coloured border (correct/incorrect results)."""

    def __init__(
        self,
        thumb: int = THUMB,
        lines: int = 1,
        width: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.thumb = thumb
        self.lines = lines
        self.cell_width = width or thumb + 12

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        fm = option.fontMetrics
        return QSize(self.cell_width, self.thumb + 10 + self.lines * (fm.height() + 1))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        painter.save()
        r = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(r, option.palette.highlight())
        pix_rect = QRect(r.x() + (r.width() - self.thumb) // 2, r.y() + 5, self.thumb, self.thumb)
        pix = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pix, QPixmap) and not pix.isNull():
            painter.drawPixmap(pix_rect, pix)
        else:
            painter.fillRect(pix_rect, QColor(70, 70, 70))
        border = index.data(BorderRole)
        if isinstance(border, QColor):
            painter.setPen(QPen(border, 4))
            painter.drawRect(pix_rect.adjusted(2, 2, -2, -2))
        painter.setPen(
            option.palette.highlightedText().color() if selected else option.palette.text().color()
        )
        fm = option.fontMetrics
        lines = [str(index.data(Qt.ItemDataRole.DisplayRole) or "")]
        sub = index.data(Qt.ItemDataRole.UserRole)
        if sub and self.lines > 1:
            lines = str(sub).split("\n")[: self.lines - 1] + lines
        title_row = len(lines) - 1
        prefix = str(index.data(ElidePrefixRole) or "")
        room = r.width() - 6

        def fits(t: str) -> bool:
            return fm.horizontalAdvance(t) <= room

        y = pix_rect.bottom() + 3
        for i, text in enumerate(lines[: self.lines]):
            if i == 0 and self.lines > 1 and sub:
                f = QFont(option.font)
                f.setBold(True)
                painter.setFont(f)
            else:
                painter.setFont(option.font)
            if i == title_row:  # the file name: keep its end (the tile number) visible
                text = elide_name(text, prefix, fits)
            else:
                text = fm.elidedText(text, Qt.TextElideMode.ElideMiddle, r.width() - 6)
            painter.drawText(
                QRect(r.x() + 3, y, r.width() - 6, fm.height()),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text,
            )  # fmt: skip
            y += fm.height() + 1
        painter.restore()


def make_grid_view(parent=None, lines: int = 1, width: int | None = None) -> QListView:
    """A fast icon grid: uniform items, batched layout, drag enabled."""
    view = QListView(parent)
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setMovement(QListView.Movement.Static)
    view.setUniformItemSizes(True)
    view.setLayoutMode(QListView.LayoutMode.Batched)
    view.setBatchSize(500)
    view.setSpacing(2)
    view.setWordWrap(False)
    view.setSelectionMode(QListView.SelectionMode.SingleSelection)
    view.setDragEnabled(True)
    view.setDragDropMode(QListView.DragDropMode.DragOnly)
    view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
    view.setItemDelegate(TileDelegate(lines=lines, width=width, parent=view))
    return view


# --- reading pixels for display ---------------------------------------------------------------
def guess_band_names(
    count: int, descriptions: tuple[str | None, ...] = (), archive_bands=()
) -> tuple[str, ...]:
    """Band names of a file: its descriptions, else the open archive's when the count matches,
    else EuroSAT MS order (13) or true colour (3), else ``band 1..n``."""
    from rsgui.bands import EUROSAT_MS_ORDER, EUROSAT_RGB_ORDER, S2_BANDS

    if descriptions and all(descriptions) and len(set(descriptions)) == count:
        names = tuple(str(d).strip() for d in descriptions)
        canon = {b.lstrip("B").lstrip("0").upper(): b for b in S2_BANDS}
        return tuple(canon.get(n.upper().lstrip("B").lstrip("0"), n) for n in names)
    if archive_bands and len(archive_bands) == count:
        return tuple(archive_bands)
    if count == 13:
        return EUROSAT_MS_ORDER
    if count == 3:
        return EUROSAT_RGB_ORDER
    return tuple(f"band {i + 1}" for i in range(count))


def read_raw_file(path: str | Path, archive_bands=()) -> tuple[np.ndarray, tuple[str, ...]]:
    """File values ``(C, H, W)`` and band names of any raster, for display (not for search)."""
    import rasterio

    from rsgui.tiff_header import quiet_georeference_warnings

    quiet_georeference_warnings()  # a JPEG without georeference is no news for the terminal
    with rasterio.open(path) as src:
        raw = src.read()
        names = guess_band_names(src.count, tuple(src.descriptions or ()), tuple(archive_bands))
    return raw, names
