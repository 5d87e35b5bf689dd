"""What an archive folder holds: tile files, Sentinel-2 scenes, or BigEarthNet patch folders.

:func:`detect` looks at the listing that :meth:`rsgui.archive.Archive.open` makes anyway (paths,
sizes), so a folder of 27,000 EuroSAT tiles costs a couple of string searches over the joined
paths and no file opened. Only raster files large enough to be scenes have their first IFD read
(:func:`rsgui.tiff_header.raster_size`). A folder that mixes layouts is refused with one line that
says what was found and what is expected, rather than half read.

Scenes are: a GeoTIFF larger than ``scene_side`` pixels on a side (multi-band, cut as it is), a
``.SAFE`` product (``GRANULE/*/IMG_DATA[/R10m|R20m|R60m]/*_B??[_10m].jp2``, each band taken once
at its finest resolution), or a set of per-band rasters named by band
(``T33UUP_20170613T101031_B02.tif``, ``..._B02_10m.tif``) sharing a prefix in one folder.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rsgui import tiff_header as th
from rsgui.listing import FileStat

TILES, SCENES, PATCHES = "tiles", "scenes", "patches"
LAYOUTS = (TILES, SCENES, PATCHES)
SCENE_BYTES = 1 << 20  # smaller files are taken for tiles without opening them (the largest
# file is checked anyway, so a well-compressed scene among tiles is still seen)
LISTED_EXTENSIONS = (".tif", ".tiff", ".jpg", ".jpeg", ".png", ".jp2", ".json")
TIFF = (".tif", ".tiff")

_BAND = r"_(?P<band>B(?:0[1-9]|1[0-2]|8A))(?:_(?P<res>10|20|60)m)?\.(?:tiff?|jp2)"
_BAND_FILE = re.compile(r"^(?P<prefix>.+?)" + _BAND + "$", re.IGNORECASE)
_BAND_ANYWHERE = re.compile(_BAND + "$", re.IGNORECASE | re.MULTILINE)
_SAFE = re.compile(
    r"^(?P<safe>(?:.*/)?[^/]+\.SAFE)/GRANULE/(?P<granule>[^/]+)/IMG_DATA/"
    r"(?:R(?P<rdir>10|20|60)m/)?(?P<file>[^/]+)$",
    re.IGNORECASE,
)
_SAFE_PART = re.compile(r"(?:^|/)[^/]+\.SAFE(?:/|$)", re.IGNORECASE)


class LayoutError(ValueError):
    """A folder that is not one archive layout (mixed, or unreadable); the message names it."""


@dataclass(frozen=True)
class SceneSpec:
    """One scene as found in the listing. ``files``: (band name, relative path) per band file,
    or one ("", path) for a multi-band raster; ``res`` the resolution (m) a name or folder
    states, 0 when unknown. ``stats``: (relative path, size, mtime_ns) of its files."""

    name: str
    files: tuple[tuple[str, str, int], ...]
    stats: tuple[tuple[str, int, int], ...]

    @property
    def multiband(self) -> bool:
        return len(self.files) == 1 and self.files[0][0] == ""


@dataclass
class Layout:
    """What :func:`detect` found. ``tile_files``: the raster files that are tiles (all of them
    for a plain tile folder); ``problems``: (relative path, reason) of files that fit no layout."""

    kind: str
    tile_files: list[FileStat] = field(default_factory=list)
    scenes: list[SceneSpec] = field(default_factory=list)
    patch_folders: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def _is_scene_file(root: Path, f: FileStat, scene_side: int) -> bool:
    size = th.raster_size(root / f[0])
    return size is not None and max(size) > scene_side


def _tile_candidates(listing: list[FileStat]) -> list[FileStat]:
    """The raster files of a plain tile folder: the listing itself unless it holds names that
    no tile archive reads (``.jp2``, ``.json``), which are dropped."""
    return [f for f in listing if not f[0].lower().endswith((".jp2", ".json"))]


def detect(
    root: Path,
    listing: list[FileStat],
    scene_side: int = th.MAX_TILE_SIDE,
    force: str | None = None,
) -> Layout:
    """The layout of ``root`` from its ``listing`` (:func:`rsgui.listing.list_files` with
    :data:`LISTED_EXTENSIONS`). ``force``: ``"scenes"`` takes every plain raster for a scene
    whatever its size, ``"tiles"`` skips the scene and patch checks. Raises
    :class:`LayoutError` for a folder that mixes layouts."""
    if force is not None and force not in LAYOUTS:
        raise ValueError(f"unknown layout {force!r}; choose from {', '.join(LAYOUTS)}")
    if force == TILES:
        return Layout(TILES, _tile_candidates(listing))
    blob = "\n".join([f[0] for f in listing])
    low = blob.lower()
    special = (
        ".jp2" in low
        or ".safe/" in low
        or ".json" in low
        or _BAND_ANYWHERE.search(blob) is not None
    )
    if not special and force is None:  # the common case: a folder of tiles, nothing opened
        tifs = [f for f in listing if f[0].lower().endswith(TIFF) and not f[3]]
        if not tifs:
            return Layout(TILES, listing)
        big = [f for f in tifs if f[1] > SCENE_BYTES]
        largest = max(tifs, key=lambda f: f[1])
        if not big:
            big = [largest]
        scenes = [f for f in big if _is_scene_file(root, f, scene_side)]
        if not scenes:
            return Layout(TILES, listing)
        names = {f[0] for f in scenes}
        rest = [f for f in listing if f[0] not in names]
        return _decide(root, [_multiband(f) for f in scenes], rest, [], [])
    return _detect_special(root, listing, scene_side, force)


def _multiband(f: FileStat) -> SceneSpec:
    return SceneSpec(f[0], (("", f[0], 0),), ((f[0], f[1], f[2]),))


def _detect_special(
    root: Path, listing: list[FileStat], scene_side: int, force: str | None
) -> Layout:
    """Sorting a listing that holds band-named files, ``.SAFE`` products, ``.jp2`` or ``.json``."""
    from rsgui import patches

    by_folder: dict[str, list[str]] = defaultdict(list)
    for f in listing:
        folder, _, name = f[0].rpartition("/")
        by_folder[folder].append(name)
    stat_of = {f[0]: f for f in listing}
    safe_groups: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
    band_groups: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
    patch_folders: list[str] = []
    patch_files: set[str] = set()
    problems: list[tuple[str, str]] = []
    rest: list[FileStat] = []
    folder_is_patch: dict[str, bool] = {}
    for f in listing:
        rel = f[0]
        low = rel.lower()
        if _SAFE_PART.search(rel):
            m = _SAFE.match(rel)
            b = _BAND_FILE.match(m.group("file")) if m else None
            if m and b:
                res = int(b.group("res") or m.group("rdir") or 0)
                key = (m.group("safe"), m.group("granule"))
                safe_groups[key].append((b.group("band").upper(), rel, res))
            continue  # the rest of a product (TCI, SCL, masks, previews) is not a band
        folder, _, name = rel.rpartition("/")
        if low.endswith(".json"):
            continue
        b = _BAND_FILE.match(name)
        if b:
            if folder not in folder_is_patch:
                folder_is_patch[folder] = _patch_folder(root, folder, by_folder[folder], patches)
            if folder_is_patch[folder]:
                if folder not in patch_files:
                    patch_files.add(folder)
                    patch_folders.append(folder)
                continue
            res = int(b.group("res") or 0)
            key = (folder, b.group("prefix"))
            band_groups[key].append((b.group("band").upper(), rel, res))
            continue
        if low.endswith(".jp2"):
            problems.append((rel, "a JPEG 2000 file that names no band (*_B02.jp2 ...)"))
            continue
        rest.append(f)
    scenes: list[SceneSpec] = []
    safes_per_product = defaultdict(int)
    for safe, _granule in safe_groups:
        safes_per_product[safe] += 1
    for (safe, granule), files in sorted(safe_groups.items()):
        name = safe if safes_per_product[safe] == 1 else f"{safe}/GRANULE/{granule}"
        scenes.append(_spec(name, files, stat_of))
    for (folder, prefix), files in sorted(band_groups.items()):
        scenes.append(_spec(f"{folder}/{prefix}" if folder else prefix, files, stat_of))
    tifs = [f for f in rest if f[0].lower().endswith(TIFF) and not f[3]]
    if force == SCENES:
        scenes += [_multiband(f) for f in tifs]
        rest = [f for f in rest if f not in set(tifs)]
    elif tifs:
        big = [f for f in tifs if f[1] > SCENE_BYTES] or [max(tifs, key=lambda f: f[1])]
        found = {f[0] for f in big if _is_scene_file(root, f, scene_side)}
        scenes += [_multiband(f) for f in tifs if f[0] in found]
        rest = [f for f in rest if f[0] not in found]
    return _decide(root, scenes, rest, sorted(patch_folders), problems)


def _patch_folder(root: Path, folder: str, names: list[str], patches) -> bool:
    """A BigEarthNet patch folder: :func:`rsgui.patches.looks_like_patch_folder`, unless it
    has no labels file and its bands are scene-sized (a scene's band files in a folder named
    like their prefix)."""
    folder_name = folder.rpartition("/")[2] if folder else root.name
    if not patches.looks_like_patch_folder(folder_name, names):
        return False
    if folder_name + patches.LABELS_SUFFIX in names:
        return True
    tif = next((n for n in sorted(names) if n.lower().endswith(TIFF)), None)
    size = th.raster_size(root / folder / tif) if tif else None
    return size is None or max(size) <= th.MAX_TILE_SIDE


def _spec(name: str, files: list[tuple[str, str, int]], stat_of: dict) -> SceneSpec:
    """Each band once, at its finest stated resolution (an L2A product has B02 in R10m, R20m and
    R60m); unstated resolutions come after stated ones, then the path decides."""
    best: dict[str, tuple[str, str, int]] = {}
    for band, rel, res in sorted(files, key=lambda t: (t[2] or 10_000, t[1])):
        best.setdefault(band, (band, rel, res))
    chosen = tuple(sorted(best.values()))
    stats = tuple((rel, stat_of[rel][1], stat_of[rel][2]) for _, rel, _ in chosen)
    return SceneSpec(name, chosen, stats)


def _example(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{items[0]}, ..."


def _decide(
    root: Path,
    scenes: list[SceneSpec],
    rest: list[FileStat],
    patch_folders: list[str],
    problems: list[tuple[str, str]],
) -> Layout:
    tiles = [f for f in rest if not f[0].lower().endswith((".jp2", ".json"))]
    tile_names = [f[0] for f in tiles if not f[3]]
    if patch_folders and (scenes or tile_names):
        other = (
            f"{len(scenes)} scene(s) ({_example([s.name for s in scenes])})"
            if scenes
            else f"{len(tile_names)} tile file(s) ({_example(tile_names)})"
        )
        raise LayoutError(
            f"{root}: mixes layouts: {len(patch_folders)} BigEarthNet patch folder(s) "
            f"({_example(patch_folders)}) and {other}; an archive is one layout (tile files, "
            "Sentinel-2 scenes, or patch folders): open them as separate archives"
        )
    if patch_folders:
        return Layout(PATCHES, patch_folders=patch_folders, problems=problems)
    if scenes:
        return Layout(SCENES, tiles, scenes, problems=problems)
    return Layout(TILES, tiles, problems=problems)


def scene_file_of(spec: SceneSpec) -> str:
    """The file that stands for a scene (its path in reports): the multi-band raster, or its
    first band file at the finest resolution."""
    files = sorted(spec.files, key=lambda t: (t[2] or 10_000, t[0]))
    return files[0][1]
