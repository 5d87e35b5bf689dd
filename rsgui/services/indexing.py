"""Build an index of an archive: the one path the application, ``rsgui-cli index`` and the
experiments take, so the same archive, method and settings give byte-identical codes everywhere.

:func:`index_job` takes an opened archive and a method: ``spectral`` is fitted on the archive
(:mod:`rsgui.encoders.spectral`), a trained method loads its model file. Every tile is then
encoded in batches (:func:`build_index_job`) and the index is saved when a path is given. Both
are jobs (:mod:`rsgui.progress`): they yield :class:`~rsgui.progress.Progress` and stop cleanly,
leaving no partial file, when their consumer closes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsgui.bands import Normalisation, band_indices, resolve_band_set
from rsgui.encoders import Encoder, encode_batch, load_trained_encoder
from rsgui.encoders.registry import METHODS
from rsgui.errors import JobError, MissingBandsError
from rsgui.index_store import HashIndex, IndexMeta, describe_bands, writable_index_dir
from rsgui.progress import Job, Progress, drive

DEFAULT_BITS = 64  # the spectral method's code length when none is asked for


@dataclass
class IndexResult:
    """A finished index: where it was saved (None when not saved) and what it holds."""

    path: Path | None
    n_tiles: int
    method: str
    index: HashIndex


def default_bands(archive) -> str:
    """The spectral method's band set when none is asked for: ms10 when the archive has those
    bands, else every band it has."""
    try:
        resolve_band_set("ms10", archive.band_names)
    except MissingBandsError:
        return "all"
    return "ms10"


def index_job(
    archive,
    method: str,
    out: str | Path | None = None,
    *,
    model: str | Path | None = None,
    encoder: Encoder | None = None,
    bands: str | None = None,
    bits: int | None = None,
    max_fit_tiles: int = 5000,
    seed: int = 0,
    batch_size: int = 256,
) -> Job[IndexResult]:
    """Index ``archive`` (an opened :class:`rsgui.archive.Archive`) with ``method``.

    ``spectral``: fitted on the archive with ``bands`` (default :func:`default_bands`), ``bits``
    (default 64), ``max_fit_tiles`` and ``seed``. A trained method: ``model`` (the checkpoint) or
    an already loaded ``encoder``; its band set and code length come from the model, and
    ``bands`` / ``bits``, when given, must agree. ``out``: where to save (``OUT.npz`` +
    ``OUT.json``). Refusals are :class:`rsgui.errors.JobError` (or the band / model errors)
    with a message for the user."""
    encoder = yield from prepare_encoder_job(
        archive, method, model=model, encoder=encoder, bands=bands, bits=bits,
        max_fit_tiles=max_fit_tiles, seed=seed, batch_size=batch_size,
    )  # fmt: skip
    index = yield from build_index_job(archive, encoder, batch_size=batch_size, model_path=model)
    path = index.save(out) if out is not None else None
    return IndexResult(path, len(index), encoder.method, index)


def prepare_encoder_job(
    archive, method: str, *, model=None, encoder: Encoder | None = None, bands=None, bits=None,
    max_fit_tiles: int = 5000, seed: int = 0, batch_size: int = 256,
) -> Job[Encoder]:  # fmt: skip
    """The encoder :func:`index_job` uses, checked against the archive: ``spectral`` fitted on
    it (stages ``"stretch"`` and ``"fit"``), a trained method's model loaded and checked."""
    if method not in METHODS or not METHODS[method].retrieval:
        raise JobError(f"unknown index method {method!r}")
    if bits is not None and bits < 1:
        raise JobError(f"the code length must be at least 1 bit, got {bits}")
    check_archive(archive)
    if METHODS[method].trained:
        encoder = encoder or _trained(method, model)
        _check_model_settings(encoder, archive, model, bands, bits)
    else:
        if model is not None or encoder is not None:
            raise JobError(f"the {method} method is fitted on the archive; it takes no model")
        bands = bands or default_bands(archive)
        check_bands(archive, bands)
        if METHODS[method].family == "pretrained":
            encoder = yield from _fit_pretrained(archive, bands, bits, max_fit_tiles, seed,
                                                 batch_size)  # fmt: skip
        else:
            from rsgui.encoders.spectral import SpectralEncoder, SpectralSettings

            encoder = yield from SpectralEncoder.fit_job(
                archive, bands, bits or DEFAULT_BITS, max_fit_tiles, SpectralSettings(seed=seed),
                batch_size,
            )  # fmt: skip
    check_encoder(archive, encoder)
    return encoder


def _fit_pretrained(archive, bands, bits, max_fit_tiles, seed, batch_size) -> Job[Encoder]:
    """The pretrained method fitted on the archive, its backbone features cached beside the
    archive's indexes (:mod:`rsgui.feature_cache`)."""
    from rsgui.encoders.pretrained import RGB, PretrainedEncoder, PretrainedSettings
    from rsgui.errors import BackboneUnavailable
    from rsgui.feature_cache import FOLDER

    names = resolve_band_set(bands, archive.band_names)
    if any(b not in names for b in RGB):
        raise JobError(
            f"the pretrained method needs B04, B03 and B02; the band set {bands} has "
            f"{', '.join(names)}"
        )
    try:
        return (
            yield from PretrainedEncoder.fit_job(
                archive, bands, bits or DEFAULT_BITS, max_fit_tiles, PretrainedSettings(seed=seed),
                writable_index_dir(Path(archive.root)) / FOLDER, batch_size,
            )
        )  # fmt: skip
    except BackboneUnavailable as e:
        raise JobError(str(e)) from None


def spectral_index_job(
    archive, bits: int = DEFAULT_BITS, bands: str | None = None
) -> Job[IndexResult]:
    """The application's "build index": :func:`index_job` with ``spectral`` on the open archive,
    saved where the archive's indexes are found (:func:`rsgui.index_store.writable_index_dir`)
    as ``spectral-BANDS-BITS``."""
    bands = bands or default_bands(archive)
    out = writable_index_dir(Path(archive.root)) / f"spectral-{bands}-{bits}"
    return (yield from index_job(archive, "spectral", out, bands=bands, bits=bits))


def _trained(method: str, model) -> Encoder:
    if not model:
        raise JobError(f"method {method} needs a model file (one made by training)")
    return load_trained_encoder(model, method)


def _check_model_settings(encoder, archive, model, bands, bits) -> None:
    if bits is not None and bits != encoder.bits:
        raise JobError(
            f"{model}: the model gives {encoder.bits}-bit codes; {bits} bits contradicts it "
            "(leave the code length out)"
        )
    if bands is not None:
        wanted = resolve_band_set(bands, archive.band_names)
        if tuple(wanted) != tuple(encoder.band_names):
            raise JobError(
                f"{model}: the model was trained on {describe_bands(encoder.band_names)}; "
                f"bands {bands} contradict it (leave the band set out)"
            )


def check_archive(archive) -> None:
    """Refuse an archive without a readable tile, naming the first problem found."""
    if len(archive) == 0:
        reason = (
            f" ({archive.problems[0].path}: {archive.problems[0].reason})"
            if archive.problems
            else ""
        )
        raise JobError(f"{archive.root}: no readable tiles{reason}")


def check_bands(archive, bands: str) -> None:
    """Refuse a band set the archive lacks, naming the missing bands and those it has."""
    try:
        resolve_band_set(bands, archive.band_names)
    except MissingBandsError as e:
        err = MissingBandsError(
            f"{archive.root}: the tiles lack band(s) {', '.join(e.missing)} of band set {bands} "
            f"(they have {', '.join(archive.band_names)})"
        )
        err.missing, err.available = e.missing, e.available  # type: ignore[attr-defined]
        raise err from None


def build_index(archive, encoder, batch_size: int = 256, model_path=None) -> HashIndex:
    """:func:`build_index_job` run to its end."""
    return drive(build_index_job(archive, encoder, batch_size=batch_size, model_path=model_path))


def build_index_job(archive, encoder, batch_size: int = 256, model_path=None) -> Job[HashIndex]:
    """Encode every tile of ``archive`` with ``encoder``; paths relative to the archive root.

    Yields a :class:`Progress` per batch (stage ``"encode"``). A trained encoder's model file
    (``model_path``, else what its ``describe()`` or ``path`` names) is recorded as an absolute
    path so the index can encode queries later."""
    check_encoder(archive, encoder)
    n = len(archive)
    if n == 0:
        raise ValueError(f"{archive.root}: no readable tiles to index")
    if hasattr(encoder, "archive_codes_job"):  # features of the whole archive, cached
        codes = yield from encoder.archive_codes_job(archive, batch_size)
        done = len(codes)
        yield Progress(done, n, f"encoding with {encoder.method}", stage="encode")
    else:
        codes = np.empty((n, encoder.bits), dtype=np.float32)
        done = 0
        for batch in archive.iter_batches(bands=list(encoder.band_names), batch_size=batch_size):
            out = encode_batch(encoder, batch)
            codes[done : done + len(out)] = out
            done += len(out)
            yield Progress(done, n, f"encoding with {encoder.method}", stage="encode")
    if done != n:
        raise ValueError(
            f"{archive.root}: read {done} of {n} tiles; the archive changed while indexing"
        )
    extra = encoder.state_arrays() if hasattr(encoder, "state_arrays") else None
    stats = archive.tile_stats() if hasattr(archive, "tile_stats") else None  # change detection
    return HashIndex.from_codes(
        codes,
        [r.path for r in archive.records],
        [r.label for r in archive.records],
        index_meta(archive, encoder, model_path),
        extra_arrays=extra,
        tile_stats=stats,
        label_sets=getattr(archive, "label_sets", None),
        label_names=getattr(archive, "label_names", ()),
    )


def check_encoder(archive, encoder) -> None:
    """Refuse an encoder whose bands the archive lacks or whose scaling differs from its own."""
    band_indices(archive.band_names, encoder.band_names)  # MissingBandsError names what lacks
    if archive.normalisation != encoder.normalisation:
        raise ValueError(
            f"the archive is scaled by {_norm_text(archive.normalisation)} but the "
            f"{encoder.method} model expects {_norm_text(encoder.normalisation)}; open the archive "
            "with the model's normalisation"
        )


def model_file(encoder, model_path=None) -> Path | None:
    """The model file of a trained encoder (``model_path``, else what it describes), absolute."""
    if METHODS.get(encoder.method) is not None and not METHODS[encoder.method].trained:
        return None
    described = dict(encoder.describe())
    found = model_path or described.get("model_path") or described.get("model")
    found = found or getattr(encoder, "path", None)
    return Path(found).resolve() if found else None


def index_meta(archive, encoder, model_path=None) -> IndexMeta:
    """How an index of ``archive`` made by ``encoder`` was made (its model file, absolute)."""
    described = dict(encoder.describe())
    described.setdefault("tile_shape", list(archive.tile_shape))
    found = model_file(encoder, model_path)
    if found:
        described["model_path"] = str(found)
    return IndexMeta(
        method=encoder.method,
        band_names=tuple(encoder.band_names),
        bits=int(encoder.bits),
        kind=encoder.kind,
        normalisation=encoder.normalisation.to_dict(),
        archive_root=str(Path(archive.root).resolve()),
        encoder=described,
    )


def _norm_text(norm: Normalisation) -> str:
    return f"min(value, {norm.clip:g}) / {norm.divisor:g}"
