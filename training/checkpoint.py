"""Checkpoints: safetensors weights plus a JSON sidecar, both written atomically.

Model files are data, never code: nothing here unpickles. A file that is not a safetensors
checkpoint of ours is refused with a message naming it, and so is one holding NaN or infinite
numbers (weights of a diverged run rank every tile alike): they are never written either. A
sidecar larger than :data:`SIDECAR_MAX_BYTES` is refused before it is read.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from rsgui.atomic import locked, new_pair_id, resolve_pair, save_pair
from rsgui.errors import ModelFileError, TrainingDiverged

log = logging.getLogger(__name__)

FORMAT = "rsgui-checkpoint"
FORMAT_VERSION = 1
SIDECAR_MAX_BYTES = 64 << 20  # a sidecar holds settings and a loss history: far below this


def non_finite(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The name of the first floating tensor holding NaN or infinity, else None."""
    for name, t in tensors.items():
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            return name
    return None


def read_sidecar(path: str | os.PathLike) -> dict:
    """The JSON settings beside a model file, refused (:class:`ModelFileError` naming it) when
    missing, too large, unreadable or not a JSON object."""
    path = Path(path)
    side = sidecar_path(path)
    try:
        size = side.stat().st_size
        if size > SIDECAR_MAX_BYTES:
            raise ModelFileError(
                f"{side}: {size:,} bytes, too large for a model's settings file "
                f"(at most {SIDECAR_MAX_BYTES:,})"
            )
        meta = json.loads(side.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing its settings file {side.name}") from None
    except RecursionError:
        raise ModelFileError(f"{side}: unreadable settings (nested too deeply)") from None
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{side}: unreadable settings ({_first_line(e)})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{side}: not an rsgui checkpoint settings file")
    return meta


def check_normalisation(path: str | os.PathLike, meta: dict) -> None:
    """A sidecar's pixel scaling must be finite with a positive divisor (NaN there makes every
    tile NaN); :class:`ModelFileError` naming the sidecar otherwise."""
    norm = meta.get("normalisation")
    if norm is None:
        return
    try:
        clip, divisor = float(norm["clip"]), float(norm["divisor"])
    except (KeyError, TypeError, ValueError, OverflowError):
        clip = divisor = math.nan
    if not (math.isfinite(clip) and math.isfinite(divisor) and divisor > 0):
        raise ModelFileError(f"{sidecar_path(path)}: normalisation {norm!r} is not usable")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def sidecar_path(path: str | os.PathLike) -> Path:
    """``model.safetensors`` -> ``model.json``."""
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write ``tensors`` to ``path`` (safetensors) and ``meta`` to its JSON sidecar.

    The weights are renamed into place first and the sidecar last, so a reader that finds a
    sidecar always finds the weights it describes.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    bad = non_finite(tensors)
    if bad is not None:
        raise TrainingDiverged(
            f"{path}: not saved: tensor {bad} holds NaN or infinite values (training diverged)"
        )
    # one id in both files ties them; the lock keeps a second writer from mixing them
    pair = new_pair_id()
    full_meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta, "pair_id": pair}
    save_pair(
        path,
        lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT, "pair_id": pair}),
        sidecar_path(path),
        json.dumps(full_meta, indent=2, default=str),
        pair,
    )
    return path


def weights_pair_id(path: str | os.PathLike) -> str | None:
    """The pair id stored in a safetensors file's header, None when it has none (or no header)."""
    try:
        with safe_open(str(path), "pt") as f:
            md = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None
    return md.get("pair_id")


def _read_json(pending: Path, path: Path) -> dict:
    """A pending sidecar (a folder the swap cannot be finished in), read as :func:`read_sidecar`."""
    try:
        meta = json.loads(pending.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{pending}: unreadable settings of {path.name} ({e})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{pending}: not an rsgui checkpoint settings file")
    return meta


def _checked_pair(path: Path) -> dict:
    """The sidecar of ``path``, checked to come from the same write as the weights (their
    ``pair_id``); a mismatch seen while a writer holds the lock is read again after it."""
    side = sidecar_path(path)
    weights_id = weights_pair_id(path)
    found = None if side.is_file() else resolve_pair(path, side, weights_id)
    meta = read_sidecar(path) if found in (None, side) else _read_json(found, path)
    ids = meta.get("pair_id"), weights_id
    if ids[0] != ids[1]:
        # a writer killed (or still busy) between its two renames: its sidecar is pending
        found = resolve_pair(path, side, weights_id)
        if found is None:
            with locked(path, shared=True):  # a live writer: read once it has finished
                weights_id = weights_pair_id(path)
            found = resolve_pair(path, side, weights_id) or side
        meta = read_sidecar(path) if found == side else _read_json(found, path)
        ids = meta.get("pair_id"), weights_id
    if ids[0] != ids[1]:
        raise ModelFileError(
            f"{path} and {sidecar_path(path).name} come from different writes (their ids "
            f"differ: {str(ids[1] or 'none')[:40]} and {str(ids[0] or 'none')[:40]}); "
            "use a complete checkpoint"
        )
    if ids[0] is None:
        log.warning(
            "%s: a checkpoint of an older version (no pair id); its settings file cannot be "
            "checked against its weights",
            path,
        )
    return meta


def load_checkpoint(
    path: str | os.PathLike, expected_method: str | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read weights and sidecar; raise :class:`ModelFileError` with the file name on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    meta = _checked_pair(path)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{sidecar_path(path)}: not an rsgui checkpoint settings file")
    check_normalisation(path, meta)
    if expected_method is not None and meta.get("method") != expected_method:
        raise ModelFileError(
            f"{path}: a {meta.get('method')!r} model, but method {expected_method!r} was asked for"
        )
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path}: not a safetensors model file ({_first_line(e)})") from None
    bad = non_finite(tensors)
    if bad is not None:
        raise ModelFileError(
            f"{path}: tensor {bad} holds NaN or infinite values (a diverged training run?); "
            "the model cannot be used"
        )
    return tensors, meta
