"""Is an index still true to its archive, and bringing it up to date for the changed tiles only.

An index stores, per tile, the size, mtime_ns and content check (:func:`rsgui.listing.
content_check`) the file had when it was encoded. :func:`index_changes` compares them with the
archive now: tiles removed, tiles changed (other size or time, or the same size and time but other
content) and tiles new since. :func:`update_index_job` re-encodes only the changed and new tiles
with the index's own encoder (the fitted projection or the model file it names), keeps the other
codes and drops the removed tiles: the result is what a full rebuild with that encoder gives.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rsgui.codes import pack_codes
from rsgui.errors import JobError
from rsgui.index_store import HashIndex, index_paths
from rsgui.listing import content_check
from rsgui.progress import Job, Progress


@dataclass
class IndexChanges:
    """What changed in an index's archive since the index was built."""

    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    checked: bool = True  # False: an older index without tile stats (changes cannot be told)
    missing_root: str | None = None  # the archive folder itself is gone

    @property
    def stale(self) -> bool:
        return bool(self.removed or self.changed or self.added or self.missing_root)

    def summary(self) -> str:
        """One line: ``3 tiles removed, 2 changed, 1 new since the index was built``."""
        if self.missing_root:
            return f"its archive folder {self.missing_root} is not found"
        parts = []
        if self.removed:
            parts.append(f"{len(self.removed)} tile(s) removed")
        if self.changed:
            parts.append(f"{len(self.changed)} changed")
        if self.added:
            parts.append(f"{len(self.added)} new")
        text = ", ".join(parts) + " since the index was built" if parts else "up to date"
        if not self.checked:
            text += " (an older index: changed tiles cannot be told from unchanged ones)"
        return text


def _fresh_stats(root: Path, rels: list[str]) -> np.ndarray:
    """(N, 3) size, mtime_ns, content check of each file now; -1 rows for missing ones."""
    out = np.full((len(rels), 3), -1, dtype=np.int64)
    for i, rel in enumerate(rels):
        p = os.path.join(root, rel)
        try:
            st = os.stat(p)
            if not stat.S_ISREG(st.st_mode):
                continue
            out[i] = (st.st_size, st.st_mtime_ns, content_check(p))
        except OSError:
            continue
    return out


def index_changes(index: HashIndex, archive=None, deep: bool = True) -> IndexChanges:
    """Compare ``index`` with its archive: the open ``archive`` (its scan, no file read when
    ``deep`` is False) or the folder the index names, opened here. ``deep`` also reads each
    file's content check, which tells a file rewritten with the same size and time."""
    root = index.meta.archive_root
    if archive is None:
        if not root:
            return IndexChanges(checked=False)
        if not Path(root).is_dir():
            return IndexChanges(missing_root=root)
        from rsgui.archive import Archive

        archive = Archive.open(root)
    now = {r.path: i for i, r in enumerate(archive.records)}
    arc_stats = archive.tile_stats() if hasattr(archive, "tile_stats") else None
    removed = [p for p in index.paths if p not in now]
    added = [p for p in now if index.position_of(p) is None]
    common = [p for p in index.paths if p in now]
    changes = IndexChanges(removed=removed, added=added, checked=index.tile_stats is not None)
    if index.tile_stats is None or not common:
        return changes
    pos_idx = np.array([index.position_of(p) for p in common], dtype=np.int64)
    old = index.tile_stats[pos_idx]
    if deep and getattr(archive, "_reader", None) is not None:
        deep = False  # scene windows and patch folders: their source re-stated them at open
    if deep:
        new = _fresh_stats(Path(archive.root), common)
    elif arc_stats is not None:
        new = arc_stats[np.array([now[p] for p in common], dtype=np.int64)]
    else:
        return changes
    same = (old[:, 0] == new[:, 0]) & (old[:, 1] == new[:, 1])
    known = (old[:, 2] != 0) & (new[:, 2] != 0)
    same &= ~known | (old[:, 2] == new[:, 2])
    changes.changed = [p for p, ok in zip(common, same.tolist(), strict=True) if not ok]
    # a tile gone since the archive was scanned counts as removed, not changed
    gone = {p for p, row in zip(common, new.tolist(), strict=True) if row[0] < 0}
    if gone:
        changes.removed += [p for p in changes.changed if p in gone]
        changes.changed = [p for p in changes.changed if p not in gone]
    return changes


@dataclass
class UpdateResult:
    """An updated index: where it was saved and how many tiles were re-encoded, kept, dropped."""

    path: Path
    index: HashIndex
    encoded: int
    kept: int
    removed: int
    changes: IndexChanges

    @property
    def n_tiles(self) -> int:
        return len(self.index)


def update_index_job(
    index_path: str | os.PathLike, archive=None, batch_size: int = 256
) -> Job[UpdateResult]:
    """Bring the index at ``index_path`` up to date with its archive (``archive``: the open
    one, else the folder the index names, opened with the index's scaling): only changed and new
    tiles are encoded (stage ``"encode"``), removed ones dropped; saved over the index."""
    from rsgui.bands import Normalisation
    from rsgui.services.search import encoder_for_index

    npz, _ = index_paths(index_path)
    index = HashIndex.load(npz)
    meta = index.meta
    if archive is None:
        if not meta.archive_root:
            raise JobError(f"{npz}: the index does not name its archive folder; rebuild it")
        if not Path(meta.archive_root).is_dir():
            raise JobError(f"{npz}: its archive folder {meta.archive_root} is not found")
        from rsgui.archive import Archive

        norm = Normalisation.from_dict(meta.normalisation) if meta.normalisation else None
        archive = Archive.open(meta.archive_root, normalisation=norm)
    elif meta.archive_root and Path(meta.archive_root).resolve() != Path(archive.root).resolve():
        raise JobError(
            f"{npz}: an index of {meta.archive_root}, not of the open archive {archive.root}"
        )
    if len(archive) == 0:
        raise JobError(f"{archive.root}: no readable tiles left to index")
    encoder = encoder_for_index(index)
    from rsgui.services.indexing import check_encoder

    check_encoder(archive, encoder)
    yield Progress(0, None, "checking which tiles changed", stage="check")
    rels = [r.path for r in archive.records]
    if getattr(archive, "_reader", None) is not None:  # a scene or per-band product
        stats = archive.tile_stats()
    else:
        stats = _fresh_stats(Path(archive.root), rels)
    if hasattr(archive, "note_checks"):
        archive.note_checks(stats[:, 2].clip(0))  # its scan may trust stale offsets
    changes = index_changes(index, archive, deep=False)
    old_pos = np.array([-1 if (j := index.position_of(p)) is None else j for p in rels], np.int64)
    reuse = old_pos >= 0
    if index.tile_stats is not None:
        old = index.tile_stats[np.where(reuse, old_pos, 0)]
        same = (old[:, 0] == stats[:, 0]) & (old[:, 1] == stats[:, 1])
        known = (old[:, 2] != 0) & (stats[:, 2] != 0)
        reuse &= same & (~known | (old[:, 2] == stats[:, 2]))
    else:
        reuse[:] = False  # nothing tells an unchanged tile: encode all
    changes.changed = [p for p, r, o in zip(rels, reuse.tolist(), old_pos.tolist(), strict=True)
                       if o >= 0 and not r]  # fmt: skip
    todo = np.flatnonzero(~reuse)
    n = len(rels)
    binary = meta.kind == "binary"
    width = index.codes.shape[1] if binary else meta.bits
    out = np.empty((n, width), dtype=np.uint8 if binary else np.float32)
    if reuse.any():
        src = index.codes if binary else index.features
        out[reuse] = src[old_pos[reuse]]
    done = 0
    for batch in archive.iter_batches(list(meta.band_names), batch_size, indices=todo):
        codes = np.asarray(encoder.encode(batch.pixels), dtype=np.float32)
        rows = todo[done : done + len(codes)]
        out[rows] = pack_codes(codes) if binary else codes
        done += len(codes)
        yield Progress(done, len(todo), f"encoding {len(todo)} changed tile(s)", stage="encode")
    new_meta = replace(meta, created=datetime.now(UTC).isoformat(timespec="seconds"))
    labels = [r.label for r in archive.records]
    kw = {"codes": out} if binary else {"features": out}
    if getattr(archive, "label_sets", None) is not None:
        kw["label_sets"] = archive.label_sets  # rows in record order, as rels
        kw["label_names"] = archive.label_names
    updated = HashIndex(new_meta, rels, labels, extra_arrays=index.extra_arrays,
                        tile_stats=stats, **kw)  # fmt: skip
    path = updated.save(npz)
    removed = len(index) - int((old_pos >= 0).sum())
    return UpdateResult(path, updated, len(todo), int(reuse.sum()), removed, changes)
